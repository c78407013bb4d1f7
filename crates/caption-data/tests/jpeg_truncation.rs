//! Cut-short JPEGs are refused as Pillow refuses them: every case of the fixture that Pillow
//! 13 generated (`tools/data/generate_truncated_jpeg_fixture.py`: six kinds of JPEG, baseline,
//! progressive, optimised, with restart markers, grayscale, with an EXIF thumbnail, each cut at
//! many lengths and with bytes after its end) against `check_image_bytes`.
//!
//! The rule here is "the data reaches its end-of-image marker". Pillow reads a file that lacks
//! only that marker when libjpeg happens to need no byte beyond the data for the last block
//! (it depends on the bit position of the last Huffman code); here such a file is refused. So
//! the two agree on every file with a byte of pixel data missing, and differ only on files cut
//! within their last two bytes, where this check is the stricter.

use std::path::Path;

use caption_data::check_image_bytes;

#[test]
fn cut_jpegs_are_refused_as_pillow_refuses_them() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("cases.json")).unwrap()).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    let (mut agree, mut stricter) = (0, Vec::new());
    for case in cases {
        let name = case["file"].as_str().unwrap();
        let bytes = std::fs::read(folder.join(name)).unwrap();
        let length = case["length"].as_u64().unwrap() as usize;
        let mut data = bytes[..length].to_vec();
        if case.get("trailer").is_some() {
            data.extend_from_slice(b"camera trailer");
        }
        let pillow = case["pillow_reads"].as_bool().unwrap();
        let ours = check_image_bytes(&data).is_ok();
        if ours == pillow {
            agree += 1;
        } else {
            // Only ever stricter, and only where the end marker alone is missing.
            assert!(pillow && !ours && length + 2 >= bytes.len(), "{name} cut to {length} of {}", bytes.len());
            stricter.push(format!("{name} cut to {length} of {}", bytes.len()));
        }
    }
    assert_eq!(cases.len(), 142);
    assert!(agree >= 138, "{agree} agree; stricter: {stricter:?}");
    println!("{agree} of {} cases as Pillow; stricter on {stricter:?}", cases.len());
}
