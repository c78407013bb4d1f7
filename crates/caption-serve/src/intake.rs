//! A request's images: read from the raw body or a multipart form, each checked before the model
//! sees it — a format this server reads (else 415), a pixel count within the limit read from the
//! header before any decoding (else 422), and a picture that decodes whole (else 422, with the
//! reason).

use std::io::Cursor;

use axum::http::StatusCode;
use image::{ImageFormat, ImageReader, RgbImage};

use crate::error::ApiError;

/// One uploaded file: its name (the multipart file name, or `image` for a raw body) and bytes.
pub(crate) struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A checked, decoded image with its name and original size.
pub(crate) struct Picture {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub image: RgbImage,
}

/// Whether a raw body's `Content-Type` may hold an image: `image/*`, `application/octet-stream`,
/// or none.
pub(crate) fn is_image_type(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|value| {
        let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        essence.starts_with("image/") || essence == "application/octet-stream" || essence.is_empty()
    })
}

/// Checks and decodes `upload`, its pixel count against `max_pixels` first.
///
/// # Errors
/// 415 for a format this server does not read, 422 for too many pixels or a picture that does
/// not decode (the reason said, the file named).
pub(crate) fn picture(upload: Upload, max_pixels: u64) -> Result<Picture, ApiError> {
    let Upload { name, bytes } = upload;
    let format =
        image::guess_format(&bytes).ok().filter(|format| matches!(format, ImageFormat::Jpeg | ImageFormat::Png));
    let Some(format) = format else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{name}: not a JPEG or PNG image (the formats this server reads)"),
        ));
    };
    let unprocessable = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{name}: {message}"));
    let (width, height) = ImageReader::with_format(Cursor::new(&bytes), format)
        .into_dimensions()
        .map_err(|e| unprocessable(format!("cannot read the image's header: {e}")))?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(unprocessable(format!(
            "{width}x{height} is {pixels} pixels, more than the {max_pixels} this server accepts (--max-pixels)"
        )));
    }
    let image = caption_data::check_image_bytes(&bytes).map_err(|problem| unprocessable(problem.to_string()))?;
    Ok(Picture { name, width, height, image })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        RgbImage::new(width, height).write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png).unwrap();
        bytes
    }

    fn upload(bytes: Vec<u8>) -> Upload {
        Upload { name: "x.png".into(), bytes }
    }

    #[test]
    fn images_are_checked_before_they_are_decoded() {
        let ok = picture(upload(png(40, 30)), 10_000).ok().unwrap();
        assert_eq!((ok.width, ok.height, ok.image.width()), (40, 30, 40));
        let status = |result: Result<Picture, ApiError>| result.err().map(|e| (e.status, e.message));
        let (code, message) = status(picture(upload(png(200, 100)), 10_000)).unwrap();
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.contains("200x100 is 20000 pixels"), "{message}");
        let (code, message) = status(picture(upload(b"GIF89a...".to_vec()), 10_000)).unwrap();
        assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(message.starts_with("x.png: not a JPEG or PNG"), "{message}");
        let mut cut = png(40, 30);
        cut.truncate(cut.len() / 2);
        let (code, message) = status(picture(upload(cut), 10_000)).unwrap();
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
    }

    #[test]
    fn raw_bodies_must_say_they_hold_an_image() {
        assert!(is_image_type(Some("image/jpeg")) && is_image_type(Some("IMAGE/PNG; q=1")) && is_image_type(None));
        assert!(is_image_type(Some("application/octet-stream")));
        assert!(!is_image_type(Some("application/json")) && !is_image_type(Some("text/plain")));
    }
}
