//! The convolutional encoder and the decoder with its mid-block
//! cross-attention (reference §3.2 and §3.5), for any `ddconfig`.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use burn::nn::GroupNorm;
use v2l_nn::Loader;

use crate::blocks::{
    conv, normalize, swish, AttnBlock, Conv, CrossAttention, Downsample, ResnetBlock, Upsample,
};
use crate::config::ModelConfig;

/// `n` ResnetBlocks of one level (`block.{j}`, the first from `c_in`
/// channels), each followed by an AttnBlock (`attn.{j}`) when the level has
/// attention; built in that interleaved order (it fixes a seeded model).
fn load_blocks<B: Backend>(
    level: &Loader<'_, B>,
    n: usize,
    c_in: usize,
    c_out: usize,
    with_attn: bool,
) -> (Vec<ResnetBlock<B>>, Vec<AttnBlock<B>>) {
    let mut block = Vec::with_capacity(n);
    let mut attn = Vec::new();
    for j in 0..n {
        let c = if j == 0 { c_in } else { c_out };
        block.push(ResnetBlock::load(&level.pp(format!("block.{j}")), c, c_out));
        if with_attn {
            attn.push(AttnBlock::load(&level.pp(format!("attn.{j}")), c_out));
        }
    }
    (block, attn)
}

/// Each block, then its attention block if there is one.
fn run_blocks<B: Backend>(
    block: &[ResnetBlock<B>],
    attn: &[AttnBlock<B>],
    mut h: Tensor<B, 4>,
) -> Tensor<B, 4> {
    for (j, b) in block.iter().enumerate() {
        h = b.forward(h);
        if let Some(a) = attn.get(j) {
            h = a.forward(h);
        }
    }
    h
}

/// One encoder level: ResnetBlocks (each followed by attention where the
/// `resolution` counter says) and a downsample except at the last level.
#[derive(Module, Debug)]
pub struct EncoderLevel<B: Backend> {
    /// `down.{i}.block.{j}`.
    pub block: Vec<ResnetBlock<B>>,
    /// `down.{i}.attn.{j}` (empty when the level has no attention).
    pub attn: Vec<AttnBlock<B>>,
    /// `down.{i}.downsample`.
    pub downsample: Option<Downsample<B>>,
}

/// The encoder: `conv_in`, levels, middle (Res, Attn, Res), GroupNorm,
/// swish, `conv_out`.
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    /// 3×3 stem.
    pub conv_in: Conv<B>,
    /// Levels, top resolution first.
    pub down: Vec<EncoderLevel<B>>,
    /// `mid.block_1`.
    pub mid_block_1: ResnetBlock<B>,
    /// `mid.attn_1`.
    pub mid_attn_1: AttnBlock<B>,
    /// `mid.block_2`.
    pub mid_block_2: ResnetBlock<B>,
    /// Output norm.
    pub norm_out: GroupNorm<B>,
    /// 3×3 to the latent channels.
    pub conv_out: Conv<B>,
}

impl<B: Backend> Encoder<B> {
    /// Build under `vb` (the `encoder.` scope).
    pub(crate) fn load(vb: &Loader<'_, B>, config: &ModelConfig) -> Self {
        let dd = &config.ddconfig;
        let levels = dd.levels();
        let conv_in = conv(&vb.pp("conv_in"), [dd.ch, dd.in_channels, 3], 1, 1);
        let mut down = Vec::with_capacity(levels);
        let mut c_in = dd.ch;
        for i in 0..levels {
            let level = vb.pp(format!("down.{i}"));
            let c_out = dd.level_channels(i);
            let with_attn = dd.encoder_level_attention(i);
            let (block, attn) = load_blocks(&level, dd.num_res_blocks, c_in, c_out, with_attn);
            c_in = c_out;
            let downsample =
                (i + 1 != levels).then(|| Downsample::load(&level.pp("downsample"), c_out));
            down.push(EncoderLevel {
                block,
                attn,
                downsample,
            });
        }
        let c = dd.mid_channels();
        Self {
            conv_in,
            down,
            mid_block_1: ResnetBlock::load(&vb.pp("mid.block_1"), c, c),
            mid_attn_1: AttnBlock::load(&vb.pp("mid.attn_1"), c),
            mid_block_2: ResnetBlock::load(&vb.pp("mid.block_2"), c, c),
            norm_out: normalize(&vb.pp("norm_out"), c),
            conv_out: conv(
                &vb.pp("conv_out"),
                [config.encoder_out_channels(), c, 3],
                1,
                1,
            ),
        }
    }

    /// `[B, in_channels, H, W]` → `[B, z, H/2^n, W/2^n]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut h = self.conv_in.forward(x);
        for level in &self.down {
            h = run_blocks(&level.block, &level.attn, h);
            if let Some(d) = &level.downsample {
                h = d.forward(h);
            }
        }
        h = self.mid_block_1.forward(h);
        h = self.mid_attn_1.forward(h);
        h = self.mid_block_2.forward(h);
        self.conv_out.forward(swish(self.norm_out.forward(h)))
    }
}

/// One decoder level: `num_res_blocks + 1` ResnetBlocks (with attention
/// where the counter says) and an upsample except at level 0.
#[derive(Module, Debug)]
pub struct DecoderLevel<B: Backend> {
    /// `up.{i}.block.{j}`.
    pub block: Vec<ResnetBlock<B>>,
    /// `up.{i}.attn.{j}`.
    pub attn: Vec<AttnBlock<B>>,
    /// `up.{i}.upsample`.
    pub upsample: Option<Upsample<B>>,
}

/// The decoder: `conv_in`, middle (Res, Attn, CrossAttention, Res), levels
/// from the lowest resolution up, GroupNorm, swish, `conv_out`.
#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    /// 3×3 from the latent channels.
    pub conv_in: Conv<B>,
    /// `mid.block_1`.
    pub mid_block_1: ResnetBlock<B>,
    /// `mid.attn_1`.
    pub mid_attn_1: AttnBlock<B>,
    /// `mid.cross_attn_1` (absent without
    /// [`ModelConfig::cross_attention`]).
    pub mid_cross_attn_1: Option<CrossAttention<B>>,
    /// `mid.block_2`.
    pub mid_block_2: ResnetBlock<B>,
    /// Levels indexed as in the state dict (`up.0` is the full resolution;
    /// run from the last to the first).
    pub up: Vec<DecoderLevel<B>>,
    /// Output norm.
    pub norm_out: GroupNorm<B>,
    /// 3×3 to image channels.
    pub conv_out: Conv<B>,
}

impl<B: Backend> Decoder<B> {
    /// Build under `vb` (the `decoder.` scope).
    pub(crate) fn load(vb: &Loader<'_, B>, config: &ModelConfig) -> Self {
        let dd = &config.ddconfig;
        let levels = dd.levels();
        let c_mid = dd.mid_channels();
        let conv_in = conv(&vb.pp("conv_in"), [c_mid, dd.z_channels, 3], 1, 1);
        let mid_block_1 = ResnetBlock::load(&vb.pp("mid.block_1"), c_mid, c_mid);
        let mid_attn_1 = AttnBlock::load(&vb.pp("mid.attn_1"), c_mid);
        let mid_cross_attn_1 = config.cross_attention.then(|| {
            CrossAttention::load(
                &vb.pp("mid.cross_attn_1"),
                c_mid,
                config.embed_dim,
                config.cross_attn_heads,
                config.cross_attn_dim_head(),
            )
        });
        let mid_block_2 = ResnetBlock::load(&vb.pp("mid.block_2"), c_mid, c_mid);
        // Built from the last level down, as the reference runs them, then
        // stored by level index.
        let mut up: Vec<Option<DecoderLevel<B>>> = (0..levels).map(|_| None).collect();
        let mut c_in = c_mid;
        for i in (0..levels).rev() {
            let level = vb.pp(format!("up.{i}"));
            let c_out = dd.level_channels(i);
            let with_attn = dd.decoder_level_attention(i);
            let (block, attn) = load_blocks(&level, dd.num_res_blocks + 1, c_in, c_out, with_attn);
            c_in = c_out;
            let upsample = (i != 0).then(|| Upsample::load(&level.pp("upsample"), c_out));
            up[i] = Some(DecoderLevel {
                block,
                attn,
                upsample,
            });
        }
        let up = up.into_iter().flatten().collect();
        let c0 = dd.level_channels(0);
        Self {
            conv_in,
            mid_block_1,
            mid_attn_1,
            mid_cross_attn_1,
            mid_block_2,
            up,
            norm_out: normalize(&vb.pp("norm_out"), c0),
            conv_out: conv(&vb.pp("conv_out"), [dd.out_ch, c0, 3], 1, 1),
        }
    }

    /// `z` `[B, z_channels, h, w]` and the global context `[B, k, embed_dim]`
    /// → image `[B, out_ch, h·2^n, w·2^n]` (no output activation).
    pub fn forward(&self, z: Tensor<B, 4>, context: Tensor<B, 3>) -> Tensor<B, 4> {
        self.conv_out.forward(self.forward_features(z, context))
    }

    /// Everything before `conv_out`: the features `swish(norm_out(h))`
    /// `[B, ch, H, W]` that the last convolution maps to the image (training
    /// takes gradients with respect to `conv_out.weight` from them).
    pub fn forward_features(&self, z: Tensor<B, 4>, context: Tensor<B, 3>) -> Tensor<B, 4> {
        let mut h = self.conv_in.forward(z);
        h = self.mid_block_1.forward(h);
        h = self.mid_attn_1.forward(h);
        if let Some(cross) = &self.mid_cross_attn_1 {
            h = cross.forward(h, context);
        }
        h = self.mid_block_2.forward(h);
        for level in self.up.iter().rev() {
            h = run_blocks(&level.block, &level.attn, h);
            if let Some(u) = &level.upsample {
                h = u.forward(h);
            }
        }
        swish(self.norm_out.forward(h))
    }
}
