//! The eval transform against torchvision's (Resize((S, S)) on a PIL image, ToTensor,
//! Normalize(0.5, 0.5)) on real Flickr8k photos; fixtures from tools/data/generate_transform_fixtures.py.

use std::path::Path;

use caption_data::{ImageTransform, check_image_file};
use rand::SeedableRng;

#[path = "../../../tests/support/shared_data.rs"]
mod shared_data;
use shared_data::shared_data;

#[test]
fn eval_transform_matches_torchvision_to_one_pixel_level() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(root.join("tests/fixtures/torchvision_eval_transform.safetensors")).unwrap();
    let fixtures = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut checked = 0;
    for (key, view) in fixtures.tensors() {
        let (name, side) = key.rsplit_once('/').unwrap();
        let side: u32 = side.parse().unwrap();
        let expected: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let image = check_image_file(&shared_data("flickr8k/images").join(name)).unwrap();
        let ours = ImageTransform::eval(side).apply(&image, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
        assert_eq!(ours.len(), expected.len(), "{key}");
        // One 8-bit level is 2/255 after Normalize(0.5, 0.5).
        let level = 2.0 / 255.0;
        let differences: Vec<f32> = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).collect();
        let largest = differences.iter().copied().fold(0.0f32, f32::max);
        let mean = differences.iter().sum::<f32>() / differences.len() as f32;
        eprintln!("{key}: largest {:.3} levels, mean {:.4} levels", largest / level, mean / level);
        // The resampler is Pillow's bit for bit (the test below); what remains is the JPEG
        // decoder's rounding (zune-jpeg here, libjpeg-turbo in PIL): one level, in about 1 % of
        // the values.
        assert!(largest <= level * 1.01, "{key}: largest difference {} levels", largest / level);
        assert!(mean <= level * 0.03, "{key}: mean difference {} levels", mean / level);
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn bilinear_resize_is_pillows_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(root.join("tests/fixtures/pillow_resize.safetensors")).unwrap();
    let fixtures = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut checked = 0;
    for (key, input) in fixtures.tensors().into_iter().filter(|(key, _)| key.ends_with("/input")) {
        let case = key.trim_end_matches("/input");
        let output = fixtures.tensor(&format!("{case}/output")).unwrap();
        let (height, width) = (input.shape()[0] as u32, input.shape()[1] as u32);
        let (out_height, out_width) = (output.shape()[0] as u32, output.shape()[1] as u32);
        let image = image::RgbImage::from_raw(width, height, input.data().to_vec()).unwrap();
        let ours = caption_data::resize_bilinear(&image, out_width, out_height);
        let differing = ours.as_raw().iter().zip(output.data()).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{case}: {differing} of {} values differ from Pillow's", output.data().len());
        checked += 1;
    }
    assert_eq!(checked, 4);
}
