//! The real Flickr8k captions file in ../shared/data.

use std::path::Path;

use caption_data::sources::read_captions_file;

#[test]
fn kaggle_captions_txt_has_40455_captions_of_8091_images() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/flickr8k/captions.txt");
    let records = read_captions_file(&path).unwrap();
    assert_eq!(records.len(), 40_455);
    let mut images: Vec<&str> = records.iter().map(|r| r.image.as_str()).collect();
    images.dedup();
    assert_eq!(images.len(), 8_091);
    assert_eq!(records[0].line, 2);
    // A caption with commas, quoted in the file.
    assert!(records.iter().any(|r| r.caption.contains(" , ")));
}
