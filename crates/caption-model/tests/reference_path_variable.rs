//! `CAPTION_REFERENCE_PATH=1` forces the reference path for the whole process: every operation
//! then runs candle's differentiable operations, and the results are the CPU backend's; and
//! `CAPTION_ALLOW_TF32=1` allows TF32 on CUDA, until the API forbids it. (A test binary of its
//! own: the variables are read once per process.)

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use caption_model::backend::{self, Gradient, Path, REFERENCE_PATH_VARIABLE, TF32_VARIABLE};
use caption_model::init::initialize;
use caption_model::{CNNtoRNN, DecoderConfig, Dropout, Targets};

#[test]
fn the_variable_forces_the_reference_path_and_the_api_lifts_it() {
    // SAFETY: the only test of this binary; nothing else reads the environment yet.
    unsafe {
        std::env::set_var(REFERENCE_PATH_VARIABLE, "1");
        std::env::set_var(TF32_VARIABLE, " Yes ");
    }
    assert!(backend::allow_tf32(), "the variable allows TF32");
    #[cfg(feature = "cuda")]
    assert!(candle_core::cuda_backend::gemm_reduced_precision_f32(), "candle's own products follow the variable");
    backend::set_allow_tf32(false);
    assert!(!backend::allow_tf32(), "the API forbids it again, whatever the variable says");
    #[cfg(feature = "cuda")]
    assert!(!candle_core::cuda_backend::gemm_reduced_precision_f32(), "and candle's with it");

    let config = DecoderConfig { embed_size: 8, hidden_size: 12, vocab_size: 17, num_layers: 1 };
    let varmap = VarMap::new();
    let model = CNNtoRNN::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), config, false).unwrap();
    initialize(&varmap, 3, |name| name.contains(".fc.") || name.starts_with("decoderRNN.")).unwrap();
    let pooled = Tensor::ones((2, 2048), DType::F32, &Device::Cpu).unwrap();
    let features = model.encoder.features_from_pooled(&pooled, None).unwrap();
    let captions = Tensor::new(&[[1u32, 2], [3, 4], [5, 0]], &Device::Cpu).unwrap();

    assert!(backend::reference_only());
    assert_eq!(backend::choose(&[&pooled], Gradient::NotTracked), Path::Reference);
    assert!(model.head_gradients(&pooled, Targets::new(&captions, 0), &mut Dropout::new(0.0, 1)).unwrap().is_none());
    let reference = model.decoder.greedy(&features, 10, u32::MAX).unwrap();
    assert_eq!(reference, model.decoder.greedy_with_tensors(&features, 10, u32::MAX).unwrap());

    backend::set_reference_only(false);
    assert_eq!(backend::choose(&[&pooled], Gradient::NotTracked), Path::Cpu);
    assert!(model.head_gradients(&pooled, Targets::new(&captions, 0), &mut Dropout::new(0.0, 1)).unwrap().is_some());
    let cpu = model.decoder.greedy(&features, 10, u32::MAX).unwrap();
    for ((reference_ids, reference_score), (ids, score)) in reference.iter().zip(&cpu) {
        assert_eq!(reference_ids, ids);
        assert!((reference_score - score).abs() <= 1e-5 * reference_score.abs().max(1.0));
    }
}
