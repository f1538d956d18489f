//! The V2L tokenizer as one burn module: encoder, `quant_conv`, the local
//! quantiser over the projected LLM-vocabulary codebook, the global
//! quantiser over CLIP image embeddings, `post_quant_conv` and the decoder.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{backend::Backend, IndexingUpdateOp, Int, Tensor, TensorData};
use v2l_clip::{ClipConfig, VisionConfig, VisionTransformer};
use v2l_io::tensors::TensorSource;
use v2l_nn::layers::{self, LinearInit};
use v2l_nn::{Init, Loader, Names, Precision, Unexpected};
use v2l_quant::tensor::{Strategy, TensorCodebook};
use v2l_vl::{ImageTower, VlConfig};

use crate::blocks::{conv, Conv};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::net::{Decoder, Encoder};

/// Namespaces of the state dict that belong to the tokenizer proper (a key
/// under one of them that the architecture does not use is "unexpected").
pub const MODEL_NAMESPACES: &[&str] = &[
    "encoder.",
    "decoder.",
    "quant_conv.",
    "post_quant_conv.",
    "tok_embeddings.",
    "tok_embeddings_global.",
    "codebook_projection.",
];

/// The code-usage entropy term of training's corrected `code-entropy` mode
/// (docs/training.md, "Local-code collapse"; not in the reference).
///
/// For each position `t` the `candidates` nearest codebook rows `c` (of the
/// detached search codebook) get `p_t(c) = softmax_c(−‖z_t − c‖² / temperature)`;
/// the term is `mean_t H(p_t) − H(mean_t p_t)`: minimising it makes each
/// position pick one code confidently while the batch spreads over many
/// (the batch-entropy regulariser of lookup-free quantisation, MAGVIT-v2,
/// restricted to each position's nearest candidates). Its gradient reaches
/// the encoder only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodeEntropy {
    /// Nearest rows per position that share its probability mass.
    pub candidates: usize,
    /// Softmax temperature, in squared-distance units.
    pub temperature: f64,
}

/// `mean_t H(p_t) − H(mean_t p_t)` over candidate rows `cand` `[T, M]` of
/// `rows` `[K, D]` (detached) for queries `z` `[T, D]`.
fn candidate_entropy<B: Backend>(
    z: Tensor<B, 2>,
    rows: &Tensor<B, 2>,
    cand: Tensor<B, 2, Int>,
    temperature: f64,
) -> Tensor<B, 1> {
    let [t, m] = cand.dims();
    let [k, d] = rows.dims();
    let flat_cand = cand.reshape([t * m]);
    let c = rows
        .clone()
        .detach()
        .select(0, flat_cand.clone())
        .reshape([t, m, d]);
    let diff = z.unsqueeze_dim::<3>(1) - c;
    let logits = diff
        .square()
        .sum_dim(2)
        .reshape([t, m])
        .div_scalar(-temperature);
    let p = softmax(logits.clone(), 1);
    let h_sample = (p.clone() * log_softmax(logits, 1)).sum_dim(1).mean().neg();
    let mean_p = Tensor::<B, 1>::zeros([k], &p.device())
        .select_assign(0, flat_cand, p.reshape([t * m]), IndexingUpdateOp::Add)
        .div_scalar(t as f64);
    let h_mean = (mean_p.clone() * mean_p.add_scalar(1e-10).log())
        .sum()
        .neg();
    h_sample - h_mean
}

/// Namespaces of an official checkpoint that inference skips.
pub const SKIPPED_NAMESPACES: &[&str] = &["discriminator.", "perceptual_loss."];

/// Prefix of the CLIP vision tower inside an official checkpoint.
pub const CLIP_PREFIX: &str = "global_encoder.";

/// A parameter by state-dict name: `(name, shape, row-major values)`, in
/// PyTorch's layout.
pub use v2l_nn::NamedTensor;

/// The V2L tokenizer (reference `VQModel_LLaMA`), generic over the backend
/// and trainable under an autodiff backend: the encoder, decoder, both 1×1
/// convs and the projector train; both codebooks and the CLIP tower are
/// frozen.
#[derive(Module, Debug)]
pub struct V2lModel<B: Backend> {
    /// The convolutional encoder.
    pub encoder: Encoder<B>,
    /// The decoder with cross-attention to the global codes.
    pub decoder: Decoder<B>,
    /// 1×1 conv, latent channels → `embed_dim`.
    pub quant_conv: Conv<B>,
    /// 1×1 conv, `embed_dim` → latent channels.
    pub post_quant_conv: Conv<B>,
    /// The local codebook `[n_local, embed_dim]` (`tok_embeddings.weight`;
    /// row i = LLM token id i), frozen.
    pub local_codebook: Param<Tensor<B, 2>>,
    /// The trainable projector applied to the whole local codebook
    /// (`codebook_projection`), if the model uses one.
    pub projector: Option<Linear<B>>,
    /// The global codebook `[n_global, embed_dim]`
    /// (`tok_embeddings_global.weight`), frozen, never projected.
    pub global_codebook: Param<Tensor<B, 2>>,
    /// The frozen image side of the vision-language model of the global
    /// branch (CLIP's vision tower or ConSE's classifier), if present.
    pub vl: Option<ImageTower<B>>,
    #[module(skip)]
    config: ModelConfig,
    /// State-dict name and layout of every parameter (for saving).
    #[module(skip)]
    names: Names,
}

/// What the encoder side computes for a batch (shapes for `B` images of
/// `H × W` with a `h × w` latent grid, `D = embed_dim`).
#[derive(Debug, Clone)]
pub struct LocalEncoding<B: Backend> {
    /// `[B, z, h, w]` the encoder's output.
    pub encoder_out: Tensor<B, 4>,
    /// `[B, D, h, w]` after `quant_conv` (before normalisation).
    pub quant_conv_out: Tensor<B, 4>,
    /// `[B, D, h, w]` the straight-through quantised features (the decoder's
    /// input; its value is the chosen codebook rows).
    pub quantized: Tensor<B, 4>,
    /// `[B, h·w]` local ids (LLM token ids), row-major over `(h, w)`.
    pub local_ids: Tensor<B, 2, Int>,
    /// `[1]` the reference's `qloss`:
    /// `mean((sg(z_q) − z)²) + β · mean((z_q − sg(z))²)`.
    pub qloss: Tensor<B, 1>,
    /// `(h, w)`.
    pub grid: (usize, usize),
}

/// The global branch's result for a batch.
#[derive(Debug, Clone)]
pub struct GlobalEncoding<B: Backend> {
    /// `[B, k]` global ids, nearest first.
    pub global_ids: Tensor<B, 2, Int>,
    /// `[B, k, D]` the raw global rows (the decoder's cross-attention context).
    pub context: Tensor<B, 3>,
}

/// A full forward pass (training or evaluation).
#[derive(Debug, Clone)]
pub struct ForwardOutput<B: Backend> {
    /// Local branch.
    pub local: LocalEncoding<B>,
    /// Global branch.
    pub global: GlobalEncoding<B>,
    /// `[B, 3, H, W]` the decoder's output (no clamp).
    pub decoded: Tensor<B, 4>,
}

impl<B: Backend> V2lModel<B> {
    /// Build from a state dict in the reference's naming (`encoder.*`,
    /// `decoder.*`, `quant_conv.*`, `post_quant_conv.*`,
    /// `tok_embeddings.weight`, `codebook_projection.*`,
    /// `tok_embeddings_global.weight`) under `prefix`. The CLIP tower is
    /// added with [`with_clip`](Self::with_clip) (see
    /// [`crate::import::load_clip`]).
    ///
    /// # Errors
    /// [`ModelError::Weights`] listing every missing, unexpected or
    /// mis-shaped tensor; an invalid configuration; a read error.
    pub fn from_source(
        source: &dyn TensorSource,
        prefix: &str,
        config: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate()?;
        let vb = Loader::from_source(source, device).pp(prefix);
        let mut model = Self::build(&vb, None, config);
        model.names = vb.finish(Unexpected::Under(MODEL_NAMESPACES))?;
        Ok(model)
    }

    /// Attach the CLIP vision tower of the global branch.
    ///
    /// # Errors
    /// Its output width differs from `embed_dim`.
    pub fn with_clip(self, clip: VisionTransformer<B>, clip_config: VisionConfig) -> Result<Self> {
        self.with_image_tower(
            ImageTower::Clip(clip),
            VlConfig::Clip {
                vision: clip_config,
            },
        )
    }

    /// Run the image tower of the global branch in `precision`
    /// ([`Precision::F16`]: CLIP as the reference runs it, see
    /// [`VisionTransformer::into_precision`]; ConSE's classifier in f16).
    /// The encoder, quantisers and decoder stay in f32, as in the reference.
    pub fn with_vl_precision(mut self, precision: Precision) -> Self {
        self.vl = self.vl.take().map(|t| t.into_precision(precision));
        self
    }

    /// Attach the image side of a vision-language model (from
    /// [`v2l_vl::Vl::into_image_tower`]) as the global branch.
    ///
    /// # Errors
    /// Its output width differs from `embed_dim`.
    pub fn with_image_tower(mut self, tower: ImageTower<B>, config: VlConfig) -> Result<Self> {
        if tower.dim() != self.config.embed_dim {
            return Err(ModelError::Config(format!(
                "the {} image embedding is {}-d, the model's embed_dim {}",
                config.kind(),
                tower.dim(),
                self.config.embed_dim
            )));
        }
        let mut c = self.config.clone();
        c.vl = Some(config);
        c.validate()?;
        self.config = c;
        self.vl = Some(tower.no_grad());
        Ok(self)
    }

    /// Replace the local codebook's values (`[n_local, D]` row-major),
    /// keeping it frozen (e.g. with the official
    /// `local_codebook_embedding.pth`).
    ///
    /// # Errors
    /// Wrong length.
    pub fn replace_local_codebook(&mut self, values: Vec<f32>) -> Result<()> {
        let shape = [self.config.n_local, self.config.embed_dim];
        self.local_codebook = replaced(&self.local_codebook, values, shape, "local")?;
        Ok(())
    }

    /// Replace the global codebook's values (`[n_global, D]` row-major).
    ///
    /// # Errors
    /// Wrong length.
    pub fn replace_global_codebook(&mut self, values: Vec<f32>) -> Result<()> {
        let shape = [self.config.n_global, self.config.embed_dim];
        self.global_codebook = replaced(&self.global_codebook, values, shape, "global")?;
        Ok(())
    }

    /// Every parameter of the tokenizer (not the CLIP tower) with its
    /// state-dict name: `(name, shape, values)`, in build order.
    ///
    /// # Errors
    /// A backend returns non-f32-convertible data.
    pub fn named_tensors(&self) -> Result<Vec<NamedTensor>> {
        self.names
            .export(self)
            .map_err(|e| ModelError::Backend(e.to_string()))
    }

    /// A model with seeded random weights (PyTorch's default initialisers;
    /// the projector as the reference, N(0, 1/D)), and a random CLIP tower
    /// when `config.vl` is CLIP. A ConSE section is kept in the config but
    /// its tower (registry weights, not random) is attached by the caller
    /// with [`with_image_tower`](Self::with_image_tower). For benchmarks and
    /// training from scratch.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn random(config: &ModelConfig, seed: u64, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let vb = Loader::random(seed, device);
        let clip = match config.clip_vision() {
            Some(vc) => {
                let cc = ClipConfig {
                    vision: Some(vc.clone()),
                    text: None,
                };
                v2l_clip::Clip::<B>::random(cc, seed ^ 0x5eed, device)?
                    .into_towers()
                    .0
                    .map(ImageTower::Clip)
            }
            None => None,
        };
        let mut model = Self::build(&vb, clip, config);
        model.names = vb.finish(Unexpected::Ignore)?;
        Ok(model)
    }

    /// The tokenizer's parameters in build order (the order fixes a seeded
    /// model's values): encoder, decoder, the 1×1 convs, the local
    /// codebook, the projector, the global codebook.
    fn build(vb: &Loader<'_, B>, vl: Option<ImageTower<B>>, config: &ModelConfig) -> Self {
        let d = config.embed_dim;
        let z = config.ddconfig.z_channels;
        let encoder = Encoder::load(&vb.pp("encoder"), config);
        let decoder = Decoder::load(&vb.pp("decoder"), config);
        let quant_conv = conv(
            &vb.pp("quant_conv"),
            [d, config.encoder_out_channels(), 1],
            1,
            0,
        );
        let post_quant_conv = conv(&vb.pp("post_quant_conv"), [z, d, 1], 1, 0);
        let rows = Init::Normal(1.0 / (d as f64).sqrt());
        let local_codebook = vb.frozen("tok_embeddings.weight", [config.n_local, d], rows);
        // The reference initialises the projector's weight N(0, 1/D).
        let projector = config.use_projector.then(|| {
            let bound = 1.0 / (d as f64).sqrt();
            let init = LinearInit {
                weight: Init::Normal(bound),
                bias: Init::Uniform(bound),
            };
            layers::linear_init(&vb.pp("codebook_projection"), d, d, true, init)
        });
        let global_codebook = vb.frozen("tok_embeddings_global.weight", [config.n_global, d], rows);
        Self {
            encoder,
            decoder,
            quant_conv,
            post_quant_conv,
            local_codebook,
            projector,
            global_codebook,
            vl,
            config: config.clone(),
            names: Names::default(),
        }
    }

    /// State-dict name, layout and burn id of every parameter, in build
    /// order (a resumed optimiser finds its state by these names).
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Global tokens per image used when the caller does not say.
    pub fn set_default_k(&mut self, k: usize) -> Result<()> {
        let mut c = self.config.clone();
        c.k = k;
        c.validate()?;
        self.config = c;
        Ok(())
    }

    /// The searched local codebook `[n_local, D]`: `projector(E)` (or `E`
    /// without a projector). Differentiable with respect to the projector.
    pub fn projected_codebook(&self) -> Tensor<B, 2> {
        let e = self.local_codebook.val();
        match &self.projector {
            Some(p) => p.forward(e),
            None => e,
        }
    }

    /// The local codebook prepared for repeated searches (project once, then
    /// search many batches).
    ///
    /// # Errors
    /// A NaN or infinity in the projected rows.
    pub fn prepare_local(&self) -> Result<TensorCodebook<B>> {
        Ok(TensorCodebook::new(
            self.projected_codebook(),
            Strategy::Auto,
        )?)
    }

    /// The global codebook prepared for repeated searches.
    ///
    /// # Errors
    /// A NaN or infinity in the rows.
    pub fn prepare_global(&self) -> Result<TensorCodebook<B>> {
        Ok(TensorCodebook::new(
            self.global_codebook.val().detach(),
            Strategy::Auto,
        )?)
    }

    fn check_images(&self, images: &Tensor<B, 4>) -> Result<(usize, usize)> {
        let [b, c, h, w] = images.dims();
        let want = self.config.ddconfig.in_channels;
        if c != want {
            return Err(ModelError::InvalidInput(format!(
                "images have {c} channels, the encoder takes {want} ([batch, {want}, H, W])"
            )));
        }
        if b == 0 {
            return Err(ModelError::InvalidInput("empty batch".into()));
        }
        self.config.grid_for(h, w)
    }

    /// Encoder, `quant_conv`, normalisation and nearest-row search against
    /// `local` (from [`prepare_local`](Self::prepare_local), or `None` to
    /// project the codebook in this call, as training does).
    ///
    /// `images`: `[B, 3, H, W]` in `[-1, 1]` with `H`, `W` divisible by
    /// `2^(levels−1)`.
    ///
    /// # Errors
    /// Wrong channel count, indivisible size, empty batch, non-finite values.
    pub fn encode_local(
        &self,
        images: Tensor<B, 4>,
        local: Option<&TensorCodebook<B>>,
    ) -> Result<LocalEncoding<B>> {
        Ok(self.encode_local_inner(images, local, None)?.0)
    }

    /// [`encode_local`](Self::encode_local) without a prepared codebook (as
    /// training runs it), plus the code-usage entropy term of `entropy`
    /// (see [`CodeEntropy`]): `mean_t H(p_t) − H(mean_t p_t)` over the
    /// batch's `T` positions, a scalar `[1]` with a graph to the encoder.
    ///
    /// The local ids are the same as [`encode_local`](Self::encode_local)'s
    /// (the first of each position's candidates; both searches break ties
    /// towards the lower index).
    ///
    /// # Errors
    /// As [`encode_local`](Self::encode_local); `candidates` of 0 or above
    /// the codebook size or [`v2l_quant::MAX_TOP_K`]; a temperature that is
    /// not positive and finite.
    pub fn encode_local_with_entropy(
        &self,
        images: Tensor<B, 4>,
        entropy: &CodeEntropy,
    ) -> Result<(LocalEncoding<B>, Tensor<B, 1>)> {
        if !(entropy.temperature.is_finite() && entropy.temperature > 0.0) {
            return Err(ModelError::InvalidInput(format!(
                "code-entropy temperature must be positive and finite, got {}",
                entropy.temperature
            )));
        }
        let (enc, ent) = self.encode_local_inner(images, None, Some(entropy))?;
        let ent = ent.ok_or_else(|| ModelError::InvalidInput("no entropy computed".into()))?;
        Ok((enc, ent))
    }

    fn encode_local_inner(
        &self,
        images: Tensor<B, 4>,
        local: Option<&TensorCodebook<B>>,
        entropy: Option<&CodeEntropy>,
    ) -> Result<(LocalEncoding<B>, Option<Tensor<B, 1>>)> {
        let (gh, gw) = self.check_images(&images)?;
        let [b, _, _, _] = images.dims();
        let d = self.config.embed_dim;
        let encoder_out = self.encoder.forward(images);
        let quant_conv_out = self.quant_conv.forward(encoder_out.clone());
        let z = if self.config.normalize_features {
            // Per-position L2 norm over channels, no epsilon (reference).
            let norm = quant_conv_out.clone().square().sum_dim(1).sqrt();
            quant_conv_out.clone() / norm
        } else {
            quant_conv_out.clone()
        };
        let flat = z.permute([0, 2, 3, 1]).reshape([b * gh * gw, d]);
        let mut code_entropy = None;
        let st = match (local, &self.projector, entropy) {
            (Some(c), _, _) => c.quantize(flat.clone())?,
            // Without a prepared codebook (training): search the projected
            // rows without a graph, then project only the chosen rows with
            // one. `projector(E)[idx] = projector(E[idx])`, so the values
            // and gradients are those of projecting the whole codebook, but
            // the backward pass multiplies T rows instead of all n_local.
            (None, projector, entropy) => {
                let rows = match projector {
                    Some(_) => self.projected_codebook().detach(),
                    None => self.local_codebook.val().detach(),
                };
                let searched = TensorCodebook::new(rows, Strategy::Auto)?;
                let indices = match entropy {
                    None => searched.nearest(flat.clone())?,
                    Some(e) => {
                        let (cand, _) = searched.top_k(flat.clone(), e.candidates)?;
                        code_entropy = Some(candidate_entropy(
                            flat.clone(),
                            searched.rows(),
                            cand.clone(),
                            e.temperature,
                        ));
                        let t = cand.dims()[0];
                        cand.slice([0..t, 0..1]).reshape([t])
                    }
                };
                let chosen = match projector {
                    Some(p) => p.forward(self.local_codebook.val().select(0, indices.clone())),
                    None => self.local_codebook.val().select(0, indices.clone()),
                };
                let t = indices.dims()[0];
                let mut st = v2l_quant::tensor::straight_through(
                    flat.clone(),
                    chosen,
                    Tensor::arange(0..t as i64, &indices.device()),
                )?;
                st.indices = indices;
                st
            }
        };
        let beta = self.config.codebook_loss_weight;
        // Means in two stages (per row, then over rows): a single f32 sum
        // over all T·D values loses ~1e-4 on backends that add sequentially.
        let mse = |a: Tensor<B, 2>| a.square().sum_dim(1).mean().div_scalar(d as f64);
        let commit = mse(st.codes.clone().detach() - flat.clone());
        let codebook_side = mse(st.codes - flat.detach()).mul_scalar(beta);
        let qloss = commit + codebook_side;
        let quantized = st.output.reshape([b, gh, gw, d]).permute([0, 3, 1, 2]);
        Ok((
            LocalEncoding {
                encoder_out,
                quant_conv_out,
                quantized,
                local_ids: st.indices.reshape([b, gh * gw]),
                qloss,
                grid: (gh, gw),
            },
            code_entropy,
        ))
    }

    /// The image embedding `[B, D]` (detached; CLIP's is not normalised,
    /// ConSE's is) of images `[B, 3, R, R]` preprocessed for the
    /// vision-language model (`config().vl`'s preprocessing).
    ///
    /// # Errors
    /// No image tower; wrong image shape.
    pub fn image_embedding(&self, vl_images: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        let tower = self
            .vl
            .as_ref()
            .ok_or(ModelError::Missing("vision-language image tower"))?;
        Ok(tower.embed(vl_images)?.detach())
    }

    /// The global quantiser: L2-normalise `embedding` `[B, D]`, take the `k`
    /// rows of the (un-normalised) global codebook nearest in squared L2,
    /// nearest first, and gather them as the context.
    ///
    /// # Errors
    /// Width mismatch, `k` out of range, non-finite values.
    pub fn encode_global(
        &self,
        embedding: Tensor<B, 2>,
        k: usize,
        global: Option<&TensorCodebook<B>>,
    ) -> Result<GlobalEncoding<B>> {
        let [b, d] = embedding.dims();
        if d != self.config.embed_dim {
            return Err(ModelError::InvalidInput(format!(
                "global embedding width {d} differs from embed_dim {}",
                self.config.embed_dim
            )));
        }
        if k == 0 || k > self.config.n_global || k > v2l_quant::MAX_TOP_K {
            return Err(ModelError::InvalidInput(format!(
                "k = {k} global tokens is not in 1..={}",
                self.config.n_global.min(v2l_quant::MAX_TOP_K)
            )));
        }
        let e = v2l_clip::normalize(embedding.detach());
        let owned;
        let codebook = match global {
            Some(c) => c,
            None => {
                owned = self.prepare_global()?;
                &owned
            }
        };
        let (ids, _) = codebook.top_k(e, k)?;
        let context = self.global_context(ids.clone(), b, k);
        Ok(GlobalEncoding {
            global_ids: ids,
            context,
        })
    }

    fn global_context(&self, ids: Tensor<B, 2, Int>, b: usize, k: usize) -> Tensor<B, 3> {
        self.global_codebook
            .val()
            .detach()
            .select(0, ids.reshape([b * k]))
            .reshape([b, k, self.config.embed_dim])
    }

    /// `post_quant_conv` and the decoder: `quantized` `[B, D, h, w]` with the
    /// context `[B, k, D]` → `[B, 3, H, W]` (no clamp).
    ///
    /// # Errors
    /// Shape mismatches between the two inputs or with `embed_dim`.
    pub fn decode(&self, quantized: Tensor<B, 4>, context: Tensor<B, 3>) -> Result<Tensor<B, 4>> {
        self.check_decode_shapes(&quantized, &context)?;
        Ok(self
            .decoder
            .forward(self.post_quant_conv.forward(quantized), context))
    }

    /// [`decode`](Self::decode) split before the decoder's last
    /// convolution: `(features, image)` where `image =
    /// decoder.conv_out(features)` (training forms the gradient of a loss
    /// with respect to `decoder.conv_out.weight` from `features`).
    ///
    /// # Errors
    /// As [`decode`](Self::decode).
    pub fn decode_with_features(
        &self,
        quantized: Tensor<B, 4>,
        context: Tensor<B, 3>,
    ) -> Result<(Tensor<B, 4>, Tensor<B, 4>)> {
        self.check_decode_shapes(&quantized, &context)?;
        let features = self
            .decoder
            .forward_features(self.post_quant_conv.forward(quantized), context);
        let image = self.decoder.conv_out.forward(features.clone());
        Ok((features, image))
    }

    /// The global branch from given ids `[B, k]` (no image embedder): the
    /// rows of the global codebook as the decoder's context.
    ///
    /// # Errors
    /// [`ModelError::IdOutOfRange`] naming the first bad id; no ids.
    pub fn global_from_ids(&self, ids: Tensor<B, 2, Int>) -> Result<GlobalEncoding<B>> {
        let [b, k] = ids.dims();
        if b == 0 || k == 0 {
            return Err(ModelError::InvalidInput(format!(
                "global ids of shape {:?}",
                [b, k]
            )));
        }
        check_range("global", &ids, self.config.n_global)?;
        let context = self.global_context(ids.clone(), b, k);
        Ok(GlobalEncoding {
            global_ids: ids,
            context,
        })
    }

    fn check_decode_shapes(&self, quantized: &Tensor<B, 4>, context: &Tensor<B, 3>) -> Result<()> {
        let [b, d, _, _] = quantized.dims();
        let [bc, _, dc] = context.dims();
        let want = self.config.embed_dim;
        if d != want || dc != want || b != bc {
            return Err(ModelError::InvalidInput(format!(
                "decode takes codes [B, {want}, h, w] and context [B, k, {want}]; got {:?} and {:?}",
                quantized.dims(),
                context.dims()
            )));
        }
        Ok(())
    }

    /// Decode from ids: local ids `[B, h·w]` gather rows of the projected
    /// codebook (`local`, or projected in this call), global ids `[B, k]`
    /// rows of the global codebook.
    ///
    /// # Errors
    /// [`ModelError::IdOutOfRange`] naming the first bad id; a grid that
    /// does not match the id count.
    pub fn decode_ids(
        &self,
        local_ids: Tensor<B, 2, Int>,
        grid: (usize, usize),
        global_ids: Tensor<B, 2, Int>,
        local: Option<&TensorCodebook<B>>,
    ) -> Result<Tensor<B, 4>> {
        let [b, n] = local_ids.dims();
        let [bg, k] = global_ids.dims();
        let (gh, gw) = grid;
        if n != gh * gw || b != bg || b == 0 || k == 0 {
            return Err(ModelError::InvalidInput(format!(
                "local ids {:?} do not fit the grid {gh}×{gw} and global ids {:?}",
                [b, n],
                [bg, k]
            )));
        }
        check_range("local", &local_ids, self.config.n_local)?;
        check_range("global", &global_ids, self.config.n_global)?;
        let rows = match local {
            Some(c) => c.rows().clone(),
            None => self.projected_codebook(),
        };
        let d = self.config.embed_dim;
        let codes = rows
            .select(0, local_ids.reshape([b * n]))
            .reshape([b, gh, gw, d])
            .permute([0, 3, 1, 2]);
        let context = self.global_context(global_ids, b, k);
        self.decode(codes, context)
    }

    /// The whole forward pass of the reference (`stage 1`): local
    /// encoding with the codebook projected in this call, global ids from
    /// the CLIP tower on `clip_images`, decoding.
    ///
    /// # Errors
    /// As the parts.
    pub fn forward(
        &self,
        images: Tensor<B, 4>,
        clip_images: Tensor<B, 4>,
        k: usize,
    ) -> Result<ForwardOutput<B>> {
        let embedding = self.image_embedding(clip_images)?;
        self.forward_with_embedding(images, embedding, k)
    }

    /// [`forward`](Self::forward) with a precomputed global embedding `[B, D]`.
    ///
    /// # Errors
    /// As the parts.
    pub fn forward_with_embedding(
        &self,
        images: Tensor<B, 4>,
        embedding: Tensor<B, 2>,
        k: usize,
    ) -> Result<ForwardOutput<B>> {
        let local = self.encode_local(images, None)?;
        let global = self.encode_global(embedding, k, None)?;
        let decoded = self.decode(local.quantized.clone(), global.context.clone())?;
        Ok(ForwardOutput {
            local,
            global,
            decoded,
        })
    }
}

fn replaced<B: Backend>(
    old: &Param<Tensor<B, 2>>,
    values: Vec<f32>,
    shape: [usize; 2],
    which: &str,
) -> Result<Param<Tensor<B, 2>>> {
    if values.len() != shape[0] * shape[1] {
        return Err(ModelError::InvalidInput(format!(
            "{} values for the {which} codebook of shape {shape:?}",
            values.len()
        )));
    }
    let device = old.val().device();
    let t = Tensor::from_data(TensorData::new(values, shape), &device);
    // Same id, so the parameter keeps its state-dict name.
    Ok(Param::initialized(old.id, t).set_require_grad(false))
}

/// Checks every id of `ids` lies in `0..size`.
fn check_range<B: Backend>(
    which: &'static str,
    ids: &Tensor<B, 2, Int>,
    size: usize,
) -> Result<()> {
    let [_, n] = ids.dims();
    let values = ids
        .to_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
    if let Some((p, &id)) = values
        .iter()
        .enumerate()
        .find(|(_, &i)| i < 0 || i as u64 >= size as u64)
    {
        return Err(ModelError::IdOutOfRange {
            which,
            id,
            image: p / n.max(1),
            position: p % n.max(1),
            size,
        });
    }
    Ok(())
}

/// Ids `[B, n]` as a burn tensor.
pub fn ids_tensor<B: Backend>(ids: &[Vec<u32>], device: &B::Device) -> Result<Tensor<B, 2, Int>> {
    let b = ids.len();
    let n = ids.first().map_or(0, Vec::len);
    if let Some((i, row)) = ids.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(ModelError::InvalidInput(format!(
            "image {i} has {} ids, image 0 has {n}",
            row.len()
        )));
    }
    let flat: Vec<i64> = ids.iter().flatten().map(|&v| i64::from(v)).collect();
    Ok(Tensor::from_data(TensorData::new(flat, [b, n]), device))
}

/// A `[B, n]` id tensor as rows of `u32`.
pub fn ids_to_rows<B: Backend>(ids: Tensor<B, 2, Int>) -> Result<Vec<Vec<u32>>> {
    let [b, n] = ids.dims();
    let values = ids
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
    let mut rows = Vec::with_capacity(b);
    for r in 0..b {
        let row = values[r * n..(r + 1) * n]
            .iter()
            .map(|&v| u32::try_from(v).map_err(|_| ModelError::Backend(format!("id {v}"))))
            .collect::<Result<Vec<u32>>>()?;
        rows.push(row);
    }
    Ok(rows)
}
