//! Files from the Hugging Face Hub through hf-hub's synchronous API: the local cache first
//! (`$HF_HOME/hub`, else `~/.cache/huggingface/hub`; layout `models--ORG--NAME/refs/main` +
//! `snapshots/REV/FILE`), a download only when the file is absent.

use std::path::PathBuf;

use hf_hub::api::sync::ApiBuilder;
use thiserror::Error;

/// torchvision's ImageNet Inception v3 weights as timm publishes them (torchvision key names).
pub const INCEPTION_V3_REPO: &str = "timm/inception_v3.tv_in1k";
/// The weights file in [`INCEPTION_V3_REPO`].
pub const INCEPTION_V3_FILE: &str = "model.safetensors";

/// Why a Hub file could not be had.
#[derive(Debug, Error)]
#[error("cannot get {file} of {repo} from the Hugging Face Hub (looked in the cache {cache} first)")]
pub struct HubError {
    /// The model repository.
    pub repo: String,
    /// The file.
    pub file: String,
    /// The cache folder searched.
    pub cache: String,
    /// hf-hub's error.
    #[source]
    pub source: hf_hub::api::sync::ApiError,
}

/// The local path of `file` in model repository `repo`, from the cache or downloaded into it
/// (with a progress bar). `HF_HOME` and `HF_ENDPOINT` are honoured.
///
/// # Errors
/// [`HubError`] when the file is neither cached nor downloadable.
pub fn model_file(repo: &str, file: &str) -> Result<PathBuf, HubError> {
    let builder = ApiBuilder::from_env().with_progress(true);
    let cache = hf_hub::Cache::from_env().path().display().to_string();
    let error = |source| HubError { repo: repo.to_string(), file: file.to_string(), cache: cache.clone(), source };
    let api = builder.build().map_err(error)?;
    api.model(repo.to_string()).get(file).map_err(error)
}
