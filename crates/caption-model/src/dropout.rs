//! [`Dropout`] with a seeded generator whose state can be saved and restored, so training is
//! reproducible and a resumed run draws the same masks as an uninterrupted one (candle's own
//! dropout uses a random generator that cannot be seeded).

use candle_core::{Result, Tensor};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Where a [`Dropout`] generator stands: enough to continue the exact same sequence of masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropoutState {
    /// The seed.
    pub seed: u64,
    /// Position in the generator's stream (32-bit words drawn).
    pub word_pos: u128,
}

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by
/// `1 / (1 - p)`, as `torch.nn.Dropout` in training mode.
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f32,
    seed: u64,
    rng: ChaCha8Rng,
}

impl Dropout {
    /// A dropout of probability `p` whose masks come from `seed`.
    pub fn new(p: f32, seed: u64) -> Self {
        Self { p, seed, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The probability of zeroing.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// Where the generator stands.
    pub fn state(&self) -> DropoutState {
        DropoutState { seed: self.seed, word_pos: self.rng.get_word_pos() }
    }

    /// A dropout continuing from `state`.
    pub fn from_state(p: f32, state: DropoutState) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(state.seed);
        rng.set_word_pos(state.word_pos);
        Self { p, seed: state.seed, rng }
    }

    /// Applies dropout to `x` (a new mask for every call).
    pub fn apply(&mut self, x: &Tensor) -> Result<Tensor> {
        let Some(mask) = self.mask(x.elem_count()) else { return Ok(x.clone()) };
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }

    /// Draws the next mask of `len` elements, each 0 or `1 / (1 − p)`: the factors
    /// [`apply`](Self::apply) multiplies by, from the same stream. `None` when `p` is 0 (nothing
    /// is drawn then, as `apply` draws nothing).
    pub fn mask(&mut self, len: usize) -> Option<Vec<f32>> {
        if self.p <= 0.0 {
            return None;
        }
        let keep = 1.0 - f64::from(self.p);
        let threshold = (keep * 4_294_967_296.0) as u64;
        let scale = (1.0 / keep) as f32;
        Some((0..len).map(|_| if u64::from(self.rng.next_u32()) < threshold { scale } else { 0.0 }).collect())
    }

    /// The next mask of `len` elements as [`mask`](Self::mask) draws it (the same stream, the
    /// same elements), packed as bits: bit `i % 32` of word `i / 32` is set where element `i` is
    /// kept, and kept elements are multiplied by the returned scale `1 / (1 − p)`. What the CUDA
    /// backend copies to the GPU: a 32nd of the float32 mask's bytes. `None` when `p` is 0.
    pub fn mask_bits(&mut self, len: usize) -> Option<(Vec<u32>, f32)> {
        if self.p <= 0.0 {
            return None;
        }
        let keep = 1.0 - f64::from(self.p);
        let threshold = (keep * 4_294_967_296.0) as u64;
        let mut bits = vec![0u32; len.div_ceil(32)];
        for i in 0..len {
            if u64::from(self.rng.next_u32()) < threshold {
                bits[i / 32] |= 1 << (i % 32);
            }
        }
        Some((bits, (1.0 / keep) as f32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mask_bits_are_the_mask_packed_from_the_same_stream() {
        for p in [0.5f32, 0.2, 1.0] {
            let (mut floats, mut bits) = (Dropout::new(p, 3), Dropout::new(p, 3));
            for len in [1, 31, 32, 33, 1000] {
                let mask = floats.mask(len).unwrap();
                let (packed, scale) = bits.mask_bits(len).unwrap();
                assert_eq!(packed.len(), len.div_ceil(32));
                let unpacked: Vec<f32> =
                    (0..len).map(|i| if packed[i / 32] >> (i % 32) & 1 == 1 { scale } else { 0.0 }).collect();
                assert_eq!(unpacked, mask, "p {p}, {len} elements");
                assert_eq!(floats.state(), bits.state(), "both drew the same numbers");
            }
        }
        assert!(Dropout::new(0.0, 3).mask_bits(10).is_none());
    }

    #[test]
    fn masks_are_reproducible_and_resumable() {
        let x = Tensor::ones((40, 50), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut a = Dropout::new(0.5, 7);
        let first = a.apply(&x).unwrap().to_vec2::<f32>().unwrap();
        let state = a.state();
        let second = a.apply(&x).unwrap().to_vec2::<f32>().unwrap();
        let mut resumed = Dropout::from_state(0.5, state);
        assert_eq!(resumed.apply(&x).unwrap().to_vec2::<f32>().unwrap(), second);
        assert_ne!(first, second);
        let values: Vec<f32> = first.concat();
        assert!(values.iter().all(|&v| v == 0.0 || v == 2.0));
        let kept = values.iter().filter(|&&v| v == 2.0).count();
        assert!((900..1100).contains(&kept), "{kept} of 2000 kept");
    }
}
