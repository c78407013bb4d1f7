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

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::BatchNorm2d;

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
        let x = if self.padding == (0, 0) {
            x.clone()
        } else {
            x.pad_with_zeros(2, self.padding.0, self.padding.0)?.pad_with_zeros(3, self.padding.1, self.padding.1)?
        };
        self.bn.forward_t(&self.conv.forward(&x)?, train)?.relu()
    }
}

/// `F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)` with `count_include_pad=True`.
fn avg_pool_3x3_same(x: &Tensor) -> Result<Tensor> {
    x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?.avg_pool2d_with_stride(3, 1)
}

/// `F.max_pool2d(x, kernel_size=3, stride=2)`.
fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    x.max_pool2d_with_stride(3, 2)
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

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let b1 = self.branch1x1.forward_t(x, train)?;
        let b5 = self.branch5x5_2.forward_t(&self.branch5x5_1.forward_t(x, train)?, train)?;
        let b3 = self.branch3x3dbl_1.forward_t(x, train)?;
        let b3 = self.branch3x3dbl_3.forward_t(&self.branch3x3dbl_2.forward_t(&b3, train)?, train)?;
        let bp = self.branch_pool.forward_t(&avg_pool_3x3_same(x)?, train)?;
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

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let b3 = self.branch3x3.forward_t(x, train)?;
        let bd = self.branch3x3dbl_1.forward_t(x, train)?;
        let bd = self.branch3x3dbl_3.forward_t(&self.branch3x3dbl_2.forward_t(&bd, train)?, train)?;
        Tensor::cat(&[b3, bd, max_pool_3x3_s2(x)?], 1)
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

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let chain = |convs: &[BasicConv2d]| convs.iter().try_fold(x.clone(), |h, c| c.forward_t(&h, train));
        let b1 = self.branch1x1.forward_t(x, train)?;
        let b7 = chain(&self.branch7x7)?;
        let bd = chain(&self.branch7x7dbl)?;
        let bp = self.branch_pool.forward_t(&avg_pool_3x3_same(x)?, train)?;
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

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let chain = |convs: &[BasicConv2d]| convs.iter().try_fold(x.clone(), |h, c| c.forward_t(&h, train));
        Tensor::cat(&[chain(&self.branch3x3)?, chain(&self.branch7x7x3)?, max_pool_3x3_s2(x)?], 1)
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

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let b1 = self.branch1x1.forward_t(x, train)?;
        let b3 = self.branch3x3_1.forward_t(x, train)?;
        let b3 = Tensor::cat(&[self.branch3x3_2a.forward_t(&b3, train)?, self.branch3x3_2b.forward_t(&b3, train)?], 1)?;
        let bd = self.branch3x3dbl_2.forward_t(&self.branch3x3dbl_1.forward_t(x, train)?, train)?;
        let bd = Tensor::cat(
            &[self.branch3x3dbl_3a.forward_t(&bd, train)?, self.branch3x3dbl_3b.forward_t(&bd, train)?],
            1,
        )?;
        let bp = self.branch_pool.forward_t(&avg_pool_3x3_same(x)?, train)?;
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

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = x.avg_pool2d_with_stride(5, 3)?;
        let x = self.conv1.forward_t(&self.conv0.forward_t(&x, train)?, train)?;
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
    /// updates its running statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<InceptionOutput> {
        let mut x = self.transform(x)?;
        for (i, conv) in self.stem.iter().enumerate() {
            if i == 3 {
                x = max_pool_3x3_s2(&x)?; // maxpool1, before Conv2d_3b_1x1
            }
            x = conv.forward_t(&x, train)?;
        }
        x = max_pool_3x3_s2(&x)?; // maxpool2
        for block in &self.mixed_5 {
            x = block.forward_t(&x, train)?;
        }
        x = self.mixed_6a.forward_t(&x, train)?;
        for block in &self.mixed_6 {
            x = block.forward_t(&x, train)?;
        }
        let aux_logits = match (&self.aux, train) {
            (Some(aux), true) => Some(aux.forward_t(&x, train)?),
            _ => None,
        };
        x = self.mixed_7a.forward_t(&x, train)?;
        for block in &self.mixed_7 {
            x = block.forward_t(&x, train)?;
        }
        let pooled = x.mean((2, 3))?;
        let logits = self.fc.as_ref().map(|fc| fc.forward(&pooled)).transpose()?;
        Ok(InceptionOutput { pooled, logits, aux_logits })
    }
}
