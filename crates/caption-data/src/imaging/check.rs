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
    // The JPEG decoder fills what a cut file lacks with grey; PIL refuses such a file.
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && !jpeg_is_complete(bytes) {
        return Err(ImageProblem::Undecodable(
            "truncated: the JPEG data ends before its end-of-image marker (PIL: image file is truncated)".into(),
        ));
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

/// Whether a JPEG's bytes reach its end-of-image marker: segments are walked by their lengths
/// (so that an EXIF thumbnail's own markers are skipped), each scan's entropy-coded data up to
/// the next marker (`FF` followed by anything but `00` or a restart marker); a file cut short
/// runs out before `FF D9`. Bytes after the marker are allowed (cameras append data there).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut at = 2; // after SOI
    loop {
        // Fill bytes (FF FF ...) may precede a marker.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else { return false };
        at += 2;
        match marker {
            0xD9 => return true,
            // Markers without a length: TEM and the restart markers.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let (Some(&high), Some(&low)) = (bytes.get(at), bytes.get(at + 1)) else { return false };
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length < 2 {
            return false;
        }
        at += length;
        if marker == 0xDA {
            // Entropy-coded data: up to the next FF that is neither stuffing (FF 00) nor a restart marker.
            loop {
                match (bytes.get(at), bytes.get(at + 1)) {
                    (Some(&0xFF), Some(&next)) if next == 0x00 || (0xD0..=0xD7).contains(&next) => at += 2,
                    (Some(&0xFF), Some(_)) => break,
                    (Some(_), _) => at += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

/// Reads and checks an image file ([`check_image_bytes`]): a regular file (a device or FIFO is
/// refused without being opened) of at most [`crate::MAX_IMAGE_FILE_BYTES`].
///
/// # Errors
/// [`ImageProblem::Missing`] when there is no such file, [`ImageProblem::NotAFile`],
/// [`ImageProblem::TooLarge`], otherwise as [`check_image_bytes`].
pub fn check_image_file(path: &Path) -> Result<RgbImage, ImageProblem> {
    check_image_bytes(&read_image_file(path)?)
}

/// The bytes of an image file: a regular file of at most [`crate::MAX_IMAGE_FILE_BYTES`].
///
/// # Errors
/// As [`check_image_file`], before decoding.
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, ImageProblem> {
    read_input_file(path, MAX_IMAGE_FILE_BYTES).map_err(|e| match e {
        InputFileError::Missing => ImageProblem::Missing,
        InputFileError::NotAFile(kind) => ImageProblem::NotAFile(kind),
        InputFileError::TooLarge { bytes, limit } => ImageProblem::TooLarge { bytes, limit },
        InputFileError::Io(message) => ImageProblem::Unreadable(message),
        // A whole file is read, not lines.
        other @ InputFileError::LineTooLong { .. } => ImageProblem::Unreadable(other.to_string()),
    })
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
        // A JPEG cut anywhere in its data is refused as PIL refuses it; whole, or with bytes
        // after its end, it reads. A thumbnail's own end marker inside EXIF does not count.
        let mut picture = RgbImage::new(64, 48);
        for (x, y, pixel) in picture.enumerate_pixels_mut() {
            *pixel = image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 251) as u8]);
        }
        let jpeg = encode(DynamicImage::ImageRgb8(picture), ImageFormat::Jpeg);
        assert!(check_image_bytes(&jpeg).is_ok());
        assert!(check_image_bytes(&[jpeg.as_slice(), b"trailer"].concat()).is_ok());
        for cut in [jpeg.len() - 2, jpeg.len() - 40, jpeg.len() / 2, 200] {
            let problem = check_image_bytes(&jpeg[..cut]).unwrap_err().to_string();
            assert!(problem.contains("truncated"), "cut at {cut}: {problem}");
        }
        let thumbnail = [&[0xFF, 0xD8, 0xFF, 0xD9][..]].concat();
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend(u16::try_from(thumbnail.len() + 2).unwrap().to_be_bytes());
        app1.extend(&thumbnail);
        let with_exif = [&jpeg[..2], &app1, &jpeg[2..]].concat();
        assert!(check_image_bytes(&with_exif).is_ok());
        assert!(check_image_bytes(&with_exif[..with_exif.len() / 2]).is_err());
        let tiny = encode(DynamicImage::ImageRgb8(RgbImage::new(4, 40)), ImageFormat::Png);
        assert_eq!(check_image_bytes(&tiny), Err(ImageProblem::Dimensions { width: 4, height: 40 }));
        assert_eq!(check_image_file(Path::new("/nonexistent/x.jpg")), Err(ImageProblem::Missing));
        assert_eq!(check_image_file(Path::new("/")), Err(ImageProblem::NotAFile("a folder")));
        #[cfg(unix)]
        assert_eq!(check_image_file(Path::new("/dev/zero")), Err(ImageProblem::NotAFile("a device")));
    }
}
