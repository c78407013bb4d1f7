//! Deterministic splits for sources without official ones.
//!
//! An image's split depends only on its identifier and the seed (a 64-bit FNV-1a hash mapped to
//! [0, 1)), never on file order or on the other images, so adding images never moves existing ones
//! and all captions of an image share its split.

use std::fmt;
use std::str::FromStr;

use crate::{CaptionRecord, Split};

/// Fractions of images for train, validation and test (default 80/10/10).
#[derive(Debug, Clone, Copy)]
pub struct SplitRatios {
    /// Share of training images.
    pub train: f64,
    /// Share of validation images.
    pub validation: f64,
    /// Share of test images.
    pub test: f64,
    /// The three numbers as given (shown as given: `80/10/10`, `3/1/1`).
    given: [f64; 3],
}

impl SplitRatios {
    /// Shares proportional to `train`, `validation` and `test` (numbers as given).
    ///
    /// # Errors
    /// When a number is negative or not finite, all are zero, or the training share is zero.
    pub fn new(train: f64, validation: f64, test: f64) -> Result<Self, String> {
        let given = [train, validation, test];
        let total = train + validation + test;
        if given.iter().any(|p| !p.is_finite() || *p < 0.0) || total <= 0.0 {
            return Err(format!("split ratios must be non-negative and not all zero, got {train}/{validation}/{test}"));
        }
        if train <= 0.0 {
            return Err(format!(
                "the training share must be above zero (training and the vocabulary need training images), got \
                 {train}/{validation}/{test}"
            ));
        }
        Ok(Self { train: train / total, validation: validation / total, test: test / total, given })
    }
}

/// Equal when the shares are (`80/10/10` equals `8,1,1`).
impl PartialEq for SplitRatios {
    fn eq(&self, other: &Self) -> bool {
        (self.train, self.validation, self.test) == (other.train, other.validation, other.test)
    }
}

impl Default for SplitRatios {
    fn default() -> Self {
        Self { train: 0.8, validation: 0.1, test: 0.1, given: [80.0, 10.0, 10.0] }
    }
}

impl FromStr for SplitRatios {
    type Err = String;

    /// `80/10/10` or `0.8,0.1,0.1`: three non-negative numbers, normalised to sum to 1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<f64> = s
            .split(['/', ','])
            .map(|p| p.trim().parse::<f64>().map_err(|_| format!("{p:?} is not a number")))
            .collect::<Result<_, _>>()?;
        let [train, validation, test] = parts[..] else {
            return Err(format!("expected three ratios like 80/10/10, got {s:?}"));
        };
        Self::new(train, validation, test)
    }
}

impl fmt::Display for SplitRatios {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [train, validation, test] = self.given;
        write!(f, "{train}/{validation}/{test}")
    }
}

/// Gives every record without a split the split of its image: a position in [0, 1) hashed from
/// `seed` and the image identifier, cut at the ratios. Records that already have a split keep it.
pub fn assign_splits(records: &mut [CaptionRecord], ratios: SplitRatios, seed: u64) {
    for record in records.iter_mut().filter(|r| r.split.is_none()) {
        let position = unit_interval(fnv1a(seed, record.image.as_bytes()));
        record.split = Some(if position < ratios.train {
            Split::Train
        } else if position < ratios.train + ratios.validation {
            Split::Validation
        } else {
            Split::Test
        });
    }
}

/// 64-bit FNV-1a of the seed's bytes followed by `bytes`.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    seed.to_le_bytes()
        .iter()
        .chain(bytes)
        .fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The top 53 bits of `hash` as a float in [0, 1).
fn unit_interval(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(image: &str) -> CaptionRecord {
        CaptionRecord { image: image.into(), caption: "c".into(), line: 1, split: None }
    }

    #[test]
    fn ratios_parse_and_normalise() {
        assert_eq!("80/10/10".parse::<SplitRatios>().unwrap(), SplitRatios::default());
        assert_eq!("8,1,1".parse::<SplitRatios>().unwrap(), SplitRatios::default());
        assert!("80/20".parse::<SplitRatios>().is_err());
        assert!("80/-1/21".parse::<SplitRatios>().is_err());
        assert!("0/0/0".parse::<SplitRatios>().is_err());
        assert!("0/50/50".parse::<SplitRatios>().unwrap_err().contains("training share"));
        // Shown as given, not as the normalised shares' floating-point sums.
        assert_eq!("3/1/2".parse::<SplitRatios>().unwrap().to_string(), "3/1/2");
        assert_eq!("70,20,10".parse::<SplitRatios>().unwrap().to_string(), "70/20/10");
        assert_eq!(SplitRatios::default().to_string(), "80/10/10");
    }

    #[test]
    fn an_image_keeps_its_split_whatever_else_is_in_the_dataset() {
        let mut alone = vec![record("dog.jpg")];
        let mut crowd: Vec<CaptionRecord> = (0..1000).map(|i| record(&format!("{i}.jpg"))).collect();
        crowd.push(record("dog.jpg"));
        crowd.push(record("dog.jpg"));
        assign_splits(&mut alone, SplitRatios::default(), 7);
        assign_splits(&mut crowd, SplitRatios::default(), 7);
        assert_eq!(crowd[1000].split, alone[0].split);
        assert_eq!(crowd[1001].split, alone[0].split);
        let train = crowd.iter().filter(|r| r.split == Some(Split::Train)).count();
        assert!((700..900).contains(&train), "{train} of 1002 in train");
    }
}
