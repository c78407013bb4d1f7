//! Image decode + Resize((299, 299)) + ToTensor + Normalize throughput on the Flickr8k photos in
//! ../shared/data, one thread and all threads; compare with tools/data/bench_images_python.py run
//! on the same images in the same session.
//!
//! `cargo run -p caption-data --example bench_images [ROUNDS]` (the dev profile `cargo xtask` uses;
//! the image crates are optimised in it).

use std::path::PathBuf;
use std::time::Instant;

use caption_data::{ImageTransform, check_image_file};
use rand::SeedableRng;
use rayon::prelude::*;

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/flickr8k/images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let transform = ImageTransform::eval(299);
    let one = |path: &PathBuf| {
        let image = check_image_file(path).unwrap();
        transform.apply(&image, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0))
    };
    files.iter().for_each(|f| drop(one(f))); // warm the file cache
    for threads in [1, rayon::current_num_threads()] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut best = f64::INFINITY;
        for _ in 0..rounds {
            let started = Instant::now();
            pool.install(|| files.par_iter().for_each(|f| drop(one(f))));
            best = best.min(started.elapsed().as_secs_f64());
        }
        println!(
            "threads {threads}: {:.1} images/s ({} images, best of {rounds})",
            files.len() as f64 / best,
            files.len()
        );
    }
}
