//! What the training benchmarks share with their PyTorch twins.

/// `<SOS>` … `<EOS>` lengths of 32 Flickr8k captions (`random.Random(0).sample` of all 40,455,
/// spaCy tokens + 2), the same list as `bench_train_torch.py` and `bench_attention_torch.py`:
/// padded to 20, 30 % of the targets are PAD.
pub const FLICKR8K_LENGTHS: [usize; 32] = [
    12, 13, 17, 8, 14, 10, 16, 15, 9, 20, 12, 18, 9, 13, 15, 16, 10, 16, 12, 19, 16, 18, 9, 14, 12, 15, 19, 11, 18, 13,
    18, 14,
];
