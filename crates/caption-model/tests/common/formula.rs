//! The weight formula of `tools/model/generate_inception_fixtures.py`, and how outputs are compared
//! with the fixtures; shared by the parity test, the device check and the `features` CLI test.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

/// 64-bit FNV-1a.
pub fn fnv1a64(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The generator's `unit`: splitmix64 of FNV-1a(name) + i, top 24 bits in [0, 1).
pub fn unit(name: &str, n: usize) -> impl Iterator<Item = f64> {
    let h = fnv1a64(name);
    (0..n as u64).map(move |i| {
        let mut z = h.wrapping_add(i).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f64 / (1u64 << 24) as f64
    })
}

/// The formula's value for every element of tensor `name`.
pub fn value(name: &str, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let fan_in: usize = shape[1..].iter().product();
    let data: Vec<f32> = unit(name, n)
        .map(|u| {
            let v = if name.ends_with("running_var") || name.ends_with("bn.weight") {
                0.5 + u
            } else if name.ends_with("running_mean") || name.ends_with("bn.bias") {
                0.2 * (u - 0.5)
            } else if name.ends_with("fc.bias") {
                0.1 * (u - 0.5)
            } else {
                (2.0 * u - 1.0) * (6.0 / fan_in as f64).sqrt()
            };
            v as f32
        })
        .collect();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

/// Every tensor of the params file (name → shape) filled by the formula, on the CPU.
pub fn weights(params_json: &Path) -> HashMap<String, Tensor> {
    let params: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(params_json).unwrap()).unwrap();
    params["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, shape)| {
            let shape: Vec<usize> = shape.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            (name.clone(), value(name, &shape))
        })
        .collect()
}

/// Largest difference relative to the expected tensor's largest magnitude, in f64 (`actual` may
/// live on any device).
pub fn relative_difference(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.dims(), expected.dims(), "shape");
    let actual = actual.to_device(&Device::Cpu).unwrap().to_dtype(DType::F64).unwrap();
    let expected = expected.to_dtype(DType::F64).unwrap();
    let scale = expected.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    let difference = (actual - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    difference / scale
}
