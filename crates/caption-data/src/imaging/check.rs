//! Opening and checking one image: decodable, plausible dimensions, converted to RGB.

use std::path::Path;

use image::{DynamicImage, ImageReader, RgbImage};

use crate::input_file::{InputFileError, MAX_IMAGE_FILE_BYTES, read_input_file};
use thiserror::Error;

/// Why an image cannot be used. Every variant is a reason recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImageProblem {
    /// The file does not exist.
    #[error("missing file")]
    Missing,
    /// The file exists but cannot be read.
    #[error("unreadable file: {0}")]
    Unreadable(String),
    /// The path names something other than a regular file (a folder, a device, a FIFO).
    #[error("not a regular file ({0})")]
    NotAFile(&'static str),
    /// The file is larger than any image accepted ([`crate::MAX_IMAGE_FILE_BYTES`]).
    #[error("{bytes} bytes, more than the {limit} accepted for an image")]
    TooLarge {
        /// The file's size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The image's name leads outside the images folder (absolute, or with `..`).
    #[error("the name leads outside the images folder")]
    OutsideFolder,
    /// The file is empty.
    #[error("zero-byte file")]
    ZeroBytes,
    /// The bytes are not a picture of a supported format, or are corrupt or truncated.
    #[error("cannot decode: {0}")]
    Undecodable(String),
    /// The picture decodes but is too small to be resized meaningfully (or absurdly large).
    #[error("unusable dimensions {width}x{height}")]
    Dimensions {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// Smallest side accepted (anything smaller carries no visual content worth captioning).
const MIN_SIDE: u32 = 8;
/// Largest side accepted (protects memory from decompression bombs).
const MAX_SIDE: u32 = 20_000;

/// Decodes an image from memory and converts it to 8-bit RGB (grayscale is replicated, alpha is
/// dropped, CMYK and 16-bit are converted).
///
/// # Errors
/// The [`ImageProblem`] that makes the bytes unusable.
pub fn check_image_bytes(bytes: &[u8]) -> Result<RgbImage, ImageProblem> {
    if bytes.is_empty() {
        return Err(ImageProblem::ZeroBytes);
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageProblem::Undecodable(e.to_string()))?;
    let (width, height) = reader.into_dimensions().map_err(|e| ImageProblem::Undecodable(e.to_string()))?;
    if width.min(height) < MIN_SIDE || width.max(height) > MAX_SIDE {
        return Err(ImageProblem::Dimensions { width, height });
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageProblem::Undecodable(e.to_string()))?;
    let decoded: DynamicImage = reader.decode().map_err(|e| ImageProblem::Undecodable(e.to_string()))?;
    Ok(decoded.into_rgb8())
}

/// Reads and checks an image file ([`check_image_bytes`]): a regular file (a device or FIFO is
/// refused without being opened) of at most [`crate::MAX_IMAGE_FILE_BYTES`].
///
/// # Errors
/// [`ImageProblem::Missing`] when there is no such file, [`ImageProblem::NotAFile`],
/// [`ImageProblem::TooLarge`], otherwise as [`check_image_bytes`].
pub fn check_image_file(path: &Path) -> Result<RgbImage, ImageProblem> {
    let bytes = read_input_file(path, MAX_IMAGE_FILE_BYTES).map_err(|e| match e {
        InputFileError::Missing => ImageProblem::Missing,
        InputFileError::NotAFile(kind) => ImageProblem::NotAFile(kind),
        InputFileError::TooLarge { bytes, limit } => ImageProblem::TooLarge { bytes, limit },
        InputFileError::Io(message) => ImageProblem::Unreadable(message),
    })?;
    check_image_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageFormat, Luma, Rgba, RgbaImage};

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
        bytes
    }

    #[test]
    fn grayscale_and_alpha_become_rgb() {
        let gray = encode(DynamicImage::ImageLuma8(GrayImage::from_pixel(20, 10, Luma([77]))), ImageFormat::Png);
        let rgb = check_image_bytes(&gray).unwrap();
        assert_eq!((rgb.width(), rgb.height()), (20, 10));
        assert_eq!(rgb.get_pixel(3, 3).0, [77, 77, 77]);
        let rgba = encode(DynamicImage::ImageRgba8(RgbaImage::from_pixel(9, 9, Rgba([1, 2, 3, 0]))), ImageFormat::Png);
        assert_eq!(check_image_bytes(&rgba).unwrap().get_pixel(0, 0).0, [1, 2, 3]);
    }

    #[test]
    fn broken_files_are_named_problems() {
        assert_eq!(check_image_bytes(b""), Err(ImageProblem::ZeroBytes));
        assert!(matches!(check_image_bytes(b"not an image at all"), Err(ImageProblem::Undecodable(_))));
        let png = encode(DynamicImage::ImageRgb8(RgbImage::new(40, 40)), ImageFormat::Png);
        assert!(matches!(check_image_bytes(&png[..png.len() / 2]), Err(ImageProblem::Undecodable(_))));
        let tiny = encode(DynamicImage::ImageRgb8(RgbImage::new(4, 40)), ImageFormat::Png);
        assert_eq!(check_image_bytes(&tiny), Err(ImageProblem::Dimensions { width: 4, height: 40 }));
        assert_eq!(check_image_file(Path::new("/nonexistent/x.jpg")), Err(ImageProblem::Missing));
        assert_eq!(check_image_file(Path::new("/")), Err(ImageProblem::NotAFile("a folder")));
        #[cfg(unix)]
        assert_eq!(check_image_file(Path::new("/dev/zero")), Err(ImageProblem::NotAFile("a device")));
    }
}
