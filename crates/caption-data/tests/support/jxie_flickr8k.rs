//! Parquet files in `jxie/flickr8k`'s schema (image `{bytes, path}`, caption_0..caption_4) for the
//! Hub tests, each image a small PNG of its own shade.

use std::path::Path;

use polars::prelude::*;

/// A 24 × 20 PNG of one colour, its red channel `shade`.
pub fn png(shade: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(24, 20, image::Rgb([shade, 100, 200]))
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

/// Writes `names` (one image and five captions each; shades from `shade` up) as a parquet file.
pub fn write_split(path: &Path, names: &[&str], shade: u8) {
    let pngs: Vec<Vec<u8>> = (0..names.len()).map(|i| png(shade + i as u8)).collect();
    let bytes = Series::new("bytes".into(), pngs.iter().map(Vec::as_slice).collect::<Vec<&[u8]>>());
    let paths = Series::new("path".into(), names.to_vec());
    let image = StructChunked::from_series("image".into(), names.len(), [bytes, paths].iter()).unwrap().into_series();
    let mut columns: Vec<Column> = vec![image.into()];
    for k in 0..5 {
        let captions: Vec<String> = names.iter().map(|n| format!("A photo of {n} number {k} .")).collect();
        columns.push(Series::new(format!("caption_{k}").into(), captions).into());
    }
    let mut frame = DataFrame::new_infer_height(columns).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap()).finish(&mut frame).unwrap();
}
