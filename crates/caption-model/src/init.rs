//! Seeded weight initialisation for a model held in a [`VarMap`], following PyTorch's defaults,
//! so a run from random weights is reproducible.

use candle_core::{Result, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

/// Whether a parameter name is a BatchNorm running statistic (state, not trained).
pub fn is_running_statistic(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var") || name.ends_with("num_batches_tracked")
}

/// Fills every variable of `varmap` whose name matches `filter` from `seed`: convolutions He
/// normal (fan in), Linear weights and biases uniform ±1/√fan_in, LSTM (and LSTM cell) weights
/// and biases uniform ±1/√hidden (PyTorch's defaults), embeddings standard normal (the attention
/// decoder's embedding and output weights uniform ±0.1, its output bias 0, as its tutorial sets
/// them), BatchNorm weight 1, bias 0, running mean 0, running variance 1.
/// Each tensor's values depend only on the seed and its name.
///
/// # Errors
/// A candle error when a variable cannot be set.
pub fn initialize(varmap: &VarMap, seed: u64, filter: impl Fn(&str) -> bool) -> Result<()> {
    let data = varmap.data().lock().expect("no panics while holding the varmap lock");
    for (name, var) in data.iter().filter(|(name, _)| filter(name)) {
        let shape = var.shape().clone();
        let dims = shape.dims();
        let count = shape.elem_count();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(fnv1a(name.as_bytes()));
        let fan_in = dims.iter().skip(1).product::<usize>().max(1) as f64;
        let values: Vec<f32> = if name.ends_with("running_var") || (name.contains(".bn.") && name.ends_with("weight")) {
            vec![1.0; count]
        } else if is_running_statistic(name) || name.contains(".bn.") || name == "decoder.fc.bias" {
            vec![0.0; count]
        } else if name == "decoder.embedding.weight" || name == "decoder.fc.weight" {
            // The attention decoder's `init_weights` (sgrvinod's tutorial).
            sample(&Uniform::new_inclusive(-0.1, 0.1).expect("valid"), count, &mut rng)
        } else if name.contains("embed.") {
            sample(&Normal::new(0.0, 1.0).expect("valid"), count, &mut rng)
        } else if name.contains("lstm.") || name.contains("decode_step.") {
            let hidden = dims[0] / 4;
            let bound = 1.0 / (hidden as f64).sqrt();
            sample(&Uniform::new_inclusive(-bound, bound).expect("valid"), count, &mut rng)
        } else if dims.len() == 4 {
            sample(&Normal::new(0.0, (2.0 / fan_in).sqrt()).expect("valid"), count, &mut rng)
        } else {
            let fan_in = if dims.len() == 1 { linear_fan_in(&data, name).unwrap_or(fan_in) } else { fan_in };
            let bound = 1.0 / fan_in.sqrt();
            sample(&Uniform::new_inclusive(-bound, bound).expect("valid"), count, &mut rng)
        };
        var.set(&Tensor::from_vec(values, shape, var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// For a bias, the fan in of the weight beside it.
fn linear_fan_in(data: &std::collections::HashMap<String, candle_core::Var>, bias: &str) -> Option<f64> {
    let weight = data.get(&format!("{}weight", bias.strip_suffix("bias")?))?;
    Some(weight.dims().iter().skip(1).product::<usize>() as f64)
}

fn sample(distribution: &impl Distribution<f64>, count: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..count).map(|_| distribution.sample(rng) as f32).collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}
