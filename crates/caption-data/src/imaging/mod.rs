//! Images: checking that a file is a usable picture, and the tensors the model reads.

mod check;
mod files;
mod pillow_resize;
mod transform;

pub use check::{ImageProblem, check_image_bytes, check_image_file, read_image_file};
pub use files::{
    IMAGE_EXTENSIONS, ImageFiles, MAX_PATH_LINE_BYTES, collect_image_files, has_image_extension, read_image_paths,
    with_standard_input_paths,
};
pub use pillow_resize::resize_bilinear;
pub use transform::{ImageTransform, MEAN_STD_HALF};
