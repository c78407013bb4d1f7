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
        // Part of the one-level differences is the JPEG decoder's (zune-jpeg here, libjpeg-turbo in
        // PIL), part the resampler's rounding; neither ever reaches two levels.
        assert!(largest <= level * 1.01, "{key}: largest difference {} levels", largest / level);
        assert!(mean <= level * 0.2, "{key}: mean difference {} levels", mean / level);
        checked += 1;
    }
    assert_eq!(checked, 6);
}
