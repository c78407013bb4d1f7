//! Inception v3, exactly as torchvision's `Inception3`.
//!
//! VarBuilder paths equal torchvision's state_dict keys (`Conv2d_1a_3x3.conv.weight`,
//! `Mixed_5b.branch1x1.bn.running_mean`, `fc.weight`, `AuxLogits.conv0.conv.weight`, …), so
//! torchvision or timm safetensors load unchanged. Every convolution is a [`BasicConv2d`]: conv
//! without bias, BatchNorm with eps 1e-3, ReLU. The 1×7, 7×1, 1×3 and 3×1 convolutions pad their
//! input explicitly (candle pads both spatial axes alike), and 3×3 average pools pad with zeros
//! first and then divide by 9, which is torchvision's `count_include_pad=True`.
//!
//! `forward_t(x, train)`: in train mode BatchNorm normalises with batch statistics and updates its
//! running statistics (momentum 0.1), as `model.train()` does in PyTorch; dropout is the caller's.
//! Eval mode is for inference: on the CPU backend (float32, [`choose`](crate::backend::choose()))
//! each `BasicConv2d` is one fused pass (`backend::cpu::conv`) through which no gradient flows; so is
//! [`forward_batch_statistics`](Inception3::forward_batch_statistics), train mode without a
//! backward pass. Train mode and other devices run candle's differentiable operations.
//! In train mode the 3×3 pools are built from slices, sums and maxima so that the whole network
//! has a backward pass (fine-tuning); otherwise they are one pass per channel plane on the CPU
//! (`backend::cpu::pool`) and candle's pooling kernels elsewhere.

use candle_core::{DType, Module, ModuleT, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::BatchNorm2d;
use crate::backend::{self, ConvBlock, ConvMode as Mode, Pool};

/// Conv (no bias) + BatchNorm (eps 1e-3) + ReLU: torchvision's `BasicConv2d`.
#[derive(Debug, Clone)]
pub struct BasicConv2d {
    conv: Conv2d,
    bn: BatchNorm2d,
    /// Zero padding added before the convolution along (height, width) when they differ.
    padding: (usize, usize),
}

impl BasicConv2d {
    /// `BasicConv2d(in_channels, out_channels, kernel_size, stride, padding)`.
    pub fn new(
        vb: VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        stride: usize,
        padding: (usize, usize),
    ) -> Result<Self> {
        let weight = vb.pp("conv").get((out_channels, in_channels, kernel.0, kernel.1), "weight")?;
        let symmetric = padding.0 == padding.1;
        let config = Conv2dConfig { padding: if symmetric { padding.0 } else { 0 }, stride, ..Default::default() };
        Ok(Self {
            conv: Conv2d::new(weight, None, config),
            bn: BatchNorm2d::new(vb.pp("bn"), out_channels, 1e-3, 0.1)?,
            padding: if symmetric { (0, 0) } else { padding },
        })
    }

    /// A square kernel with symmetric padding.
    fn square(
        vb: VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        Self::new(vb, in_channels, out_channels, (kernel, kernel), stride, (padding, padding))
    }
}

impl ModuleT for BasicConv2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_mode(x, if train { Mode::Train } else { Mode::Eval })
    }
}

impl BasicConv2d {
    /// `relu(bn(conv(x)))`: a backend's pass where one covers the tensors and the mode, else
    /// candle's operations.
    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let eval_scale_shift = || self.bn.eval_scale_shift(x.dtype());
        let train_scale_shift =
            |mean: &Tensor, var: &Tensor, count: usize| self.bn.train_scale_shift(mean, var, count, DType::F32);
        let block = ConvBlock {
            conv: &self.conv,
            padding: self.padding,
            bn: self.bn.tensors(),
            eval_scale_shift: &eval_scale_shift,
            train_scale_shift: &train_scale_shift,
        };
        if let Some(y) = backend::conv_batch_norm_relu(x, &block, mode)? {
            return Ok(y);
        }
        let convolved = self.conv.forward(&backend::pad_asymmetric(x, self.padding)?)?;
        self.bn.forward_t(&convolved, mode != Mode::Eval)?.relu()
    }
}

/// `F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)` with `count_include_pad=True`.
///
/// In train mode it is built from shifted slices and sums, which have a backward pass (candle's
/// pools have one only when kernel = stride), so gradients reach the convolutions below.
fn avg_pool_3x3_same(x: &Tensor, mode: Mode) -> Result<Tensor> {
    if let Some(pooled) = backend::pool(x, Pool::Average3x3Same, mode.gradient())? {
        return Ok(pooled);
    }
    let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    if mode != Mode::Train {
        return padded.avg_pool2d_with_stride(3, 1);
    }
    let (h, w) = (x.dim(2)?, x.dim(3)?);
    let mut sum: Option<Tensor> = None;
    for dy in 0..3 {
        for dx in 0..3 {
            let window = padded.narrow(2, dy, h)?.narrow(3, dx, w)?;
            sum = Some(match sum {
                None => window.contiguous()?,
                Some(sum) => (sum + window)?,
            });
        }
    }
    sum.expect("nine windows") / 9.0
}

/// `F.max_pool2d(x, kernel_size=3, stride=2)`.
///
/// In train mode it is the elementwise maximum of the nine strided windows, which has a backward
/// pass (the gradient goes to the maximum, as PyTorch's does when the maximum is unique).
fn max_pool_3x3_s2(x: &Tensor, mode: Mode) -> Result<Tensor> {
    if let Some(pooled) = backend::pool(x, Pool::Max3x3Stride2, mode.gradient())? {
        return Ok(pooled);
    }
    if mode != Mode::Train {
        return x.max_pool2d_with_stride(3, 2);
    }
    let (n, c, h, w) = x.dims4()?;
    if h < 3 || w < 3 {
        candle_core::bail!("max pool 3x3: input {h}x{w} is smaller than the kernel");
    }
    let (oh, ow) = ((h - 3) / 2 + 1, (w - 3) / 2 + 1);
    // Windows are read as pairs of rows and columns; the last pair's second half may fall one
    // past the edge (it is never selected), so pad with it.
    let x =
        x.pad_with_zeros(2, 0, (2 + 2 * oh).saturating_sub(h))?.pad_with_zeros(3, 0, (2 + 2 * ow).saturating_sub(w))?;
    let mut max: Option<Tensor> = None;
    for dy in 0..3 {
        for dx in 0..3 {
            let window = x
                .narrow(2, dy, 2 * oh)?
                .narrow(3, dx, 2 * ow)?
                .reshape((n, c, oh, 2, ow, 2))?
                .narrow(3, 0, 1)?
                .narrow(5, 0, 1)?
                .reshape((n, c, oh, ow))?;
            max = Some(match max {
                None => window,
                Some(max) => max.maximum(&window)?,
            });
        }
    }
    Ok(max.expect("nine windows"))
}

/// Mixed_5b/5c/5d.
#[derive(Debug, Clone)]
struct InceptionA {
    branch1x1: BasicConv2d,
    branch5x5_1: BasicConv2d,
    branch5x5_2: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(vb: VarBuilder, in_channels: usize, pool_features: usize) -> Result<Self> {
        Ok(Self {
            branch1x1: BasicConv2d::square(vb.pp("branch1x1"), in_channels, 64, 1, 1, 0)?,
            branch5x5_1: BasicConv2d::square(vb.pp("branch5x5_1"), in_channels, 48, 1, 1, 0)?,
            branch5x5_2: BasicConv2d::square(vb.pp("branch5x5_2"), 48, 64, 5, 1, 2)?,
            branch3x3dbl_1: BasicConv2d::square(vb.pp("branch3x3dbl_1"), in_channels, 64, 1, 1, 0)?,
            branch3x3dbl_2: BasicConv2d::square(vb.pp("branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
            branch3x3dbl_3: BasicConv2d::square(vb.pp("branch3x3dbl_3"), 96, 96, 3, 1, 1)?,
            branch_pool: BasicConv2d::square(vb.pp("branch_pool"), in_channels, pool_features, 1, 1, 0)?,
        })
    }

    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let b1 = self.branch1x1.forward_mode(x, mode)?;
        let b5 = self.branch5x5_2.forward_mode(&self.branch5x5_1.forward_mode(x, mode)?, mode)?;
        let b3 = self.branch3x3dbl_1.forward_mode(x, mode)?;
        let b3 = self.branch3x3dbl_3.forward_mode(&self.branch3x3dbl_2.forward_mode(&b3, mode)?, mode)?;
        let bp = self.branch_pool.forward_mode(&avg_pool_3x3_same(x, mode)?, mode)?;
        Tensor::cat(&[b1, b5, b3, bp], 1)
    }
}

/// Mixed_6a.
#[derive(Debug, Clone)]
struct InceptionB {
    branch3x3: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(vb: VarBuilder, in_channels: usize) -> Result<Self> {
        Ok(Self {
            branch3x3: BasicConv2d::square(vb.pp("branch3x3"), in_channels, 384, 3, 2, 0)?,
            branch3x3dbl_1: BasicConv2d::square(vb.pp("branch3x3dbl_1"), in_channels, 64, 1, 1, 0)?,
            branch3x3dbl_2: BasicConv2d::square(vb.pp("branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
            branch3x3dbl_3: BasicConv2d::square(vb.pp("branch3x3dbl_3"), 96, 96, 3, 2, 0)?,
        })
    }

    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let b3 = self.branch3x3.forward_mode(x, mode)?;
        let bd = self.branch3x3dbl_1.forward_mode(x, mode)?;
        let bd = self.branch3x3dbl_3.forward_mode(&self.branch3x3dbl_2.forward_mode(&bd, mode)?, mode)?;
        Tensor::cat(&[b3, bd, max_pool_3x3_s2(x, mode)?], 1)
    }
}

/// Mixed_6b..6e: factorised 7×7 convolutions.
#[derive(Debug, Clone)]
struct InceptionC {
    branch1x1: BasicConv2d,
    branch7x7: [BasicConv2d; 3],
    branch7x7dbl: [BasicConv2d; 5],
    branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(vb: VarBuilder, in_channels: usize, c7: usize) -> Result<Self> {
        let conv = |name: &str, i, o, k, p| BasicConv2d::new(vb.pp(name), i, o, k, 1, p);
        let (row, col) = (((1, 7), (0, 3)), ((7, 1), (3, 0)));
        Ok(Self {
            branch1x1: conv("branch1x1", in_channels, 192, (1, 1), (0, 0))?,
            branch7x7: [
                conv("branch7x7_1", in_channels, c7, (1, 1), (0, 0))?,
                conv("branch7x7_2", c7, c7, row.0, row.1)?,
                conv("branch7x7_3", c7, 192, col.0, col.1)?,
            ],
            branch7x7dbl: [
                conv("branch7x7dbl_1", in_channels, c7, (1, 1), (0, 0))?,
                conv("branch7x7dbl_2", c7, c7, col.0, col.1)?,
                conv("branch7x7dbl_3", c7, c7, row.0, row.1)?,
                conv("branch7x7dbl_4", c7, c7, col.0, col.1)?,
                conv("branch7x7dbl_5", c7, 192, row.0, row.1)?,
            ],
            branch_pool: conv("branch_pool", in_channels, 192, (1, 1), (0, 0))?,
        })
    }

    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let chain = |convs: &[BasicConv2d]| convs.iter().try_fold(x.clone(), |h, c| c.forward_mode(&h, mode));
        let b1 = self.branch1x1.forward_mode(x, mode)?;
        let b7 = chain(&self.branch7x7)?;
        let bd = chain(&self.branch7x7dbl)?;
        let bp = self.branch_pool.forward_mode(&avg_pool_3x3_same(x, mode)?, mode)?;
        Tensor::cat(&[b1, b7, bd, bp], 1)
    }
}

/// Mixed_7a.
#[derive(Debug, Clone)]
struct InceptionD {
    branch3x3: [BasicConv2d; 2],
    branch7x7x3: [BasicConv2d; 4],
}

impl InceptionD {
    fn new(vb: VarBuilder, in_channels: usize) -> Result<Self> {
        Ok(Self {
            branch3x3: [
                BasicConv2d::square(vb.pp("branch3x3_1"), in_channels, 192, 1, 1, 0)?,
                BasicConv2d::square(vb.pp("branch3x3_2"), 192, 320, 3, 2, 0)?,
            ],
            branch7x7x3: [
                BasicConv2d::square(vb.pp("branch7x7x3_1"), in_channels, 192, 1, 1, 0)?,
                BasicConv2d::new(vb.pp("branch7x7x3_2"), 192, 192, (1, 7), 1, (0, 3))?,
                BasicConv2d::new(vb.pp("branch7x7x3_3"), 192, 192, (7, 1), 1, (3, 0))?,
                BasicConv2d::square(vb.pp("branch7x7x3_4"), 192, 192, 3, 2, 0)?,
            ],
        })
    }

    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let chain = |convs: &[BasicConv2d]| convs.iter().try_fold(x.clone(), |h, c| c.forward_mode(&h, mode));
        Tensor::cat(&[chain(&self.branch3x3)?, chain(&self.branch7x7x3)?, max_pool_3x3_s2(x, mode)?], 1)
    }
}

/// Mixed_7b/7c: expanded filter banks.
#[derive(Debug, Clone)]
struct InceptionE {
    branch1x1: BasicConv2d,
    branch3x3_1: BasicConv2d,
    branch3x3_2a: BasicConv2d,
    branch3x3_2b: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3a: BasicConv2d,
    branch3x3dbl_3b: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionE {
    fn new(vb: VarBuilder, in_channels: usize) -> Result<Self> {
        let conv = |name: &str, i, o, k, p| BasicConv2d::new(vb.pp(name), i, o, k, 1, p);
        Ok(Self {
            branch1x1: conv("branch1x1", in_channels, 320, (1, 1), (0, 0))?,
            branch3x3_1: conv("branch3x3_1", in_channels, 384, (1, 1), (0, 0))?,
            branch3x3_2a: conv("branch3x3_2a", 384, 384, (1, 3), (0, 1))?,
            branch3x3_2b: conv("branch3x3_2b", 384, 384, (3, 1), (1, 0))?,
            branch3x3dbl_1: conv("branch3x3dbl_1", in_channels, 448, (1, 1), (0, 0))?,
            branch3x3dbl_2: conv("branch3x3dbl_2", 448, 384, (3, 3), (1, 1))?,
            branch3x3dbl_3a: conv("branch3x3dbl_3a", 384, 384, (1, 3), (0, 1))?,
            branch3x3dbl_3b: conv("branch3x3dbl_3b", 384, 384, (3, 1), (1, 0))?,
            branch_pool: conv("branch_pool", in_channels, 192, (1, 1), (0, 0))?,
        })
    }

    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let b1 = self.branch1x1.forward_mode(x, mode)?;
        let b3 = self.branch3x3_1.forward_mode(x, mode)?;
        let b3 =
            Tensor::cat(&[self.branch3x3_2a.forward_mode(&b3, mode)?, self.branch3x3_2b.forward_mode(&b3, mode)?], 1)?;
        let bd = self.branch3x3dbl_2.forward_mode(&self.branch3x3dbl_1.forward_mode(x, mode)?, mode)?;
        let bd = Tensor::cat(
            &[self.branch3x3dbl_3a.forward_mode(&bd, mode)?, self.branch3x3dbl_3b.forward_mode(&bd, mode)?],
            1,
        )?;
        let bp = self.branch_pool.forward_mode(&avg_pool_3x3_same(x, mode)?, mode)?;
        Tensor::cat(&[b1, b3, bd, bp], 1)
    }
}

/// The auxiliary classifier on Mixed_6e (`AuxLogits`), used in training only.
#[derive(Debug, Clone)]
struct InceptionAux {
    conv0: BasicConv2d,
    conv1: BasicConv2d,
    fc: Linear,
}

impl InceptionAux {
    fn new(vb: VarBuilder, in_channels: usize, num_classes: usize) -> Result<Self> {
        Ok(Self {
            conv0: BasicConv2d::square(vb.pp("conv0"), in_channels, 128, 1, 1, 0)?,
            conv1: BasicConv2d::square(vb.pp("conv1"), 128, 768, 5, 1, 0)?,
            fc: candle_nn::linear(768, num_classes, vb.pp("fc"))?,
        })
    }

    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let x = x.avg_pool2d_with_stride(5, 3)?;
        let x = self.conv1.forward_mode(&self.conv0.forward_mode(&x, mode)?, mode)?;
        self.fc.forward(&x.mean((2, 3))?)
    }
}

/// What the network is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InceptionConfig {
    /// Classes of the final `fc`; `None` builds no `fc` (a feature extractor).
    pub num_classes: Option<usize>,
    /// Build `AuxLogits` (its weights must then be present).
    pub aux_logits: bool,
    /// torchvision's `transform_input`: re-map ImageNet-normalised input to ±1 normalisation.
    pub transform_input: bool,
}

impl Default for InceptionConfig {
    /// torchvision's `inception_v3(weights=..., aux_logits=False)`: 1000 classes, transform_input on.
    fn default() -> Self {
        Self { num_classes: Some(1000), aux_logits: false, transform_input: true }
    }
}

/// The outputs of one forward pass.
#[derive(Debug, Clone)]
pub struct InceptionOutput {
    /// The last mixed block's output (`Mixed_7c`): N × 2048 × 8 × 8 at 299 px, the spatial grid
    /// an attention decoder looks over (its mean over the grid is `pooled`).
    pub spatial: Tensor,
    /// The 2048-d globally average-pooled features (before dropout and `fc`).
    pub pooled: Tensor,
    /// `fc(pooled)` when the network has an `fc` (dropout is not applied: it is the caller's).
    pub logits: Option<Tensor>,
    /// `AuxLogits` in train mode when built.
    pub aux_logits: Option<Tensor>,
}

/// torchvision's `Inception3`.
#[derive(Debug, Clone)]
pub struct Inception3 {
    stem: Vec<BasicConv2d>,
    mixed_5: [InceptionA; 3],
    mixed_6a: InceptionB,
    mixed_6: [InceptionC; 4],
    aux: Option<InceptionAux>,
    mixed_7a: InceptionD,
    mixed_7: [InceptionE; 2],
    fc: Option<Linear>,
    transform_input: bool,
}

impl Inception3 {
    /// Builds the network from `vb`, whose paths are torchvision's state_dict keys.
    ///
    /// # Errors
    /// A missing tensor or a wrong shape, named by the VarBuilder.
    pub fn new(vb: VarBuilder, config: InceptionConfig) -> Result<Self> {
        let stem = vec![
            BasicConv2d::square(vb.pp("Conv2d_1a_3x3"), 3, 32, 3, 2, 0)?,
            BasicConv2d::square(vb.pp("Conv2d_2a_3x3"), 32, 32, 3, 1, 0)?,
            BasicConv2d::square(vb.pp("Conv2d_2b_3x3"), 32, 64, 3, 1, 1)?,
            BasicConv2d::square(vb.pp("Conv2d_3b_1x1"), 64, 80, 1, 1, 0)?,
            BasicConv2d::square(vb.pp("Conv2d_4a_3x3"), 80, 192, 3, 1, 0)?,
        ];
        Ok(Self {
            stem,
            mixed_5: [
                InceptionA::new(vb.pp("Mixed_5b"), 192, 32)?,
                InceptionA::new(vb.pp("Mixed_5c"), 256, 64)?,
                InceptionA::new(vb.pp("Mixed_5d"), 288, 64)?,
            ],
            mixed_6a: InceptionB::new(vb.pp("Mixed_6a"), 288)?,
            mixed_6: [
                InceptionC::new(vb.pp("Mixed_6b"), 768, 128)?,
                InceptionC::new(vb.pp("Mixed_6c"), 768, 160)?,
                InceptionC::new(vb.pp("Mixed_6d"), 768, 160)?,
                InceptionC::new(vb.pp("Mixed_6e"), 768, 192)?,
            ],
            aux: match (config.aux_logits, config.num_classes) {
                (true, Some(classes)) => Some(InceptionAux::new(vb.pp("AuxLogits"), 768, classes)?),
                _ => None,
            },
            mixed_7a: InceptionD::new(vb.pp("Mixed_7a"), 768)?,
            mixed_7: [InceptionE::new(vb.pp("Mixed_7b"), 1280)?, InceptionE::new(vb.pp("Mixed_7c"), 2048)?],
            fc: config.num_classes.map(|classes| candle_nn::linear(2048, classes, vb.pp("fc"))).transpose()?,
            transform_input: config.transform_input,
        })
    }

    /// The final `fc`, when the network has one.
    pub fn fc(&self) -> Option<&Linear> {
        self.fc.as_ref()
    }

    /// torchvision's `_transform_input`: channel c becomes `x·(std_c/0.5) + (mean_c−0.5)/0.5`.
    fn transform(&self, x: &Tensor) -> Result<Tensor> {
        if !self.transform_input {
            return Ok(x.clone());
        }
        const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
        const STD: [f64; 3] = [0.229, 0.224, 0.225];
        let channels = (0..3)
            .map(|c| x.narrow(1, c, 1)?.affine(STD[c] / 0.5, (MEAN[c] - 0.5) / 0.5))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&channels, 1)
    }

    /// Runs the network on `x` (N×3×299×299). In train mode BatchNorm uses batch statistics and
    /// updates its running statistics, and the result has a backward pass (fine-tuning). Eval
    /// mode is for inference (see the module docs).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<InceptionOutput> {
        self.forward_mode(x, if train { Mode::Train } else { Mode::Eval })
    }

    /// Train mode without a backward pass: BatchNorm normalises with batch statistics and updates
    /// its running statistics exactly as [`forward_t`](Self::forward_t) with `train`, but no
    /// gradient flows back into the network (the original's setup, where only `fc` trains, and
    /// BatchNorm recalibration). On the CPU in float32 each `BasicConv2d` is then one fused pass;
    /// on CUDA in float32 a convolution and two kernels (the CUDA backend).
    pub fn forward_batch_statistics(&self, x: &Tensor) -> Result<InceptionOutput> {
        self.forward_mode(x, Mode::BatchStatistics)
    }

    fn forward_mode(&self, x: &Tensor, mode: Mode) -> Result<InceptionOutput> {
        let mut x = self.transform(x)?;
        for (i, conv) in self.stem.iter().enumerate() {
            if i == 3 {
                x = max_pool_3x3_s2(&x, mode)?; // maxpool1, before Conv2d_3b_1x1
            }
            x = conv.forward_mode(&x, mode)?;
        }
        x = max_pool_3x3_s2(&x, mode)?; // maxpool2
        for block in &self.mixed_5 {
            x = block.forward_mode(&x, mode)?;
        }
        x = self.mixed_6a.forward_mode(&x, mode)?;
        for block in &self.mixed_6 {
            x = block.forward_mode(&x, mode)?;
        }
        let aux_logits = match (&self.aux, mode) {
            (Some(aux), Mode::Train | Mode::BatchStatistics) => Some(aux.forward_mode(&x, mode)?),
            _ => None,
        };
        x = self.mixed_7a.forward_mode(&x, mode)?;
        for block in &self.mixed_7 {
            x = block.forward_mode(&x, mode)?;
        }
        let pooled = x.mean((2, 3))?;
        let logits = self.fc.as_ref().map(|fc| fc.forward(&pooled)).transpose()?;
        Ok(InceptionOutput { spatial: x, pooled, logits, aux_logits })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::{Mode, avg_pool_3x3_same, max_pool_3x3_s2};

    /// Distinct values within every 3×3 window (so each window's maximum is unique).
    fn input(shape: (usize, usize, usize, usize)) -> Tensor {
        let count = shape.0 * shape.1 * shape.2 * shape.3;
        let values: Vec<f32> = (0..count).map(|i| ((i * 7919) % 101) as f32 - 50.0).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// The gradient of `sum(pool(x) · weights)` with respect to `x`.
    fn gradient(pool: fn(&Tensor, Mode) -> candle_core::Result<Tensor>, x: &Tensor) -> (Tensor, Tensor) {
        let x = Var::from_tensor(x).unwrap();
        let y = pool(x.as_tensor(), Mode::Train).unwrap();
        let weights = input(y.dims4().unwrap()).affine(0.01, 0.5).unwrap();
        let grads = (&y * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        (grads.get(x.as_tensor()).unwrap().clone(), weights)
    }

    #[test]
    fn train_mode_pools_equal_candle_pools() {
        for shape in [(2, 3, 9, 9), (1, 2, 8, 10), (1, 1, 3, 4)] {
            let x = input(shape);
            assert_eq!(
                values(&max_pool_3x3_s2(&x, Mode::Train).unwrap()),
                values(&max_pool_3x3_s2(&x, Mode::Eval).unwrap())
            );
            let (a, b) = (avg_pool_3x3_same(&x, Mode::Train).unwrap(), avg_pool_3x3_same(&x, Mode::Eval).unwrap());
            assert_eq!(a.dims(), b.dims());
            for (a, b) in values(&a).iter().zip(values(&b)) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn average_pool_gradient_is_the_pool_of_the_output_gradient() {
        // A stride-1 zero-padded 3×3 average is its own adjoint.
        let (grad, weights) = gradient(avg_pool_3x3_same, &input((1, 2, 7, 9)));
        let expected = avg_pool_3x3_same(&weights, Mode::Eval).unwrap();
        for (a, b) in values(&grad).iter().zip(values(&expected)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn max_pool_gradient_goes_to_each_windows_maximum() {
        let x = input((1, 2, 9, 8));
        let (grad, weights) = gradient(max_pool_3x3_s2, &x);
        let x = x.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        let weights = weights.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        let mut expected = vec![vec![vec![0f32; 8]; 9]; 2];
        for c in 0..2 {
            for (oy, row) in weights[c].iter().enumerate() {
                for (ox, &w) in row.iter().enumerate() {
                    let (y, x_) = (0..9)
                        .map(|k| (2 * oy + k / 3, 2 * ox + k % 3))
                        .max_by(|a, b| x[c][a.0][a.1].total_cmp(&x[c][b.0][b.1]))
                        .unwrap();
                    expected[c][y][x_] += w;
                }
            }
        }
        assert_eq!(grad.squeeze(0).unwrap().to_vec3::<f32>().unwrap(), expected);
    }
}
