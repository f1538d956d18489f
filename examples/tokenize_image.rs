//! Tokenize an image into words and LLM token ids, rebuild it, and say how
//! close the rebuild is — on any compiled device.
//!
//! ```sh
//! # the official-format tiny checkpoint of the test fixtures, a cached photo
//! cargo run --release -p v2l-examples --example tokenize_image
//! # the embedded default model, your image, another device
//! cargo run --release -p v2l-examples --example tokenize_image -- \
//!     --checkpoint default --device cpu photo.png
//! cargo run --release -p v2l-examples --features cuda --example tokenize_image -- --device cuda
//! ```
//!
//! Options: `--checkpoint PATH|default` (default: the v2l-tiny fixture, k =
//! 5 — an official-format checkpoint with random weights, so its global
//! branch has ids but no words and its rebuild is noise; `default` is a
//! trained model), `--device cpu|cuda[:N]|wgpu[:N]`, `--precision f32|f16`, then image
//! paths (default: the `photos` asset's `astronaut.png`, fetched and
//! verified into the asset cache). The rebuilt images are written beside
//! the working directory as `<stem>.rebuilt.png`.

use std::error::Error;
use std::path::PathBuf;

use v2l::metrics::psnr::PsnrChannels;
use v2l::metrics::Image;
use v2l::model::image::RgbImage;
use v2l::prelude::*;

struct Args {
    checkpoint: Option<String>,
    device: DeviceKind,
    precision: Precision,
    images: Vec<PathBuf>,
}

fn parse() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        checkpoint: None,
        device: DeviceKind::Cpu,
        precision: Precision::F32,
        images: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--checkpoint" => args.checkpoint = Some(value()?),
            "--device" => args.device = value()?.parse()?,
            "--precision" => args.precision = value()?.parse()?,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}").into()),
            _ => args.images.push(PathBuf::from(a)),
        }
    }
    Ok(args)
}

/// The work, generic over the backend `run_on` picks for the device.
struct Tokenize(Args);

impl OnDevice for Tokenize {
    type Output = Result<(), Box<dyn Error>>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let (checkpoint, global_tokens) = match args.checkpoint.as_deref() {
            Some("default") => (v2l::default_model::bundle::<B>(&device, &mut |_| {})?, None),
            Some(path) => (PathBuf::from(path), None),
            None => (
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../crates/v2l-model/tests/fixtures/v2l-tiny/checkpoint.pth"),
                Some(5),
            ),
        };
        let options = OpenOptions {
            global_tokens,
            precision: args.precision,
            ..Default::default()
        };
        let tokenizer = V2lTokenizer::<B>::open(&checkpoint, &options, &device)?;
        let images = if args.images.is_empty() {
            let photos =
                v2l::assets::fetch::fetch(v2l::assets::fetch::lookup("photos")?, &mut |_| {})?;
            let astronaut = photos
                .into_iter()
                .find(|p| p.ends_with("astronaut.png"))
                .ok_or("astronaut.png missing from the photos asset")?;
            vec![astronaut]
        } else {
            args.images
        };
        let tokens = tokenizer.encode_files(&images)?;
        let rebuilt = tokenizer.decode_to_images(&tokens)?;
        let size = tokenizer.image_size()?;
        for (i, path) in images.iter().enumerate() {
            println!("{}", path.display());
            match &tokens.global_words {
                Some(words) => println!("  global words: {}", words[i].join(", ")),
                None => println!("  global ids: {:?}", tokens.global_ids[i]),
            }
            let local = &tokens.local_ids[i];
            println!(
                "  {} local ids (LLM token ids) on a {}×{} grid, first: {:?}",
                local.len(),
                tokens.grid[0],
                tokens.grid[1],
                &local[..local.len().min(8)]
            );
            // The tokenizer's own view of the input (resized to its size),
            // against the rebuild.
            let input: RgbImage = v2l::model::image::open(path)?
                .resize_exact(
                    size as u32,
                    size as u32,
                    v2l::model::image::imageops::FilterType::CatmullRom,
                )
                .to_rgb8();
            let a = Image::from_hwc_u8(input.as_raw(), size, size, 3)?;
            let (w, h) = rebuilt[i].dimensions();
            let b = Image::from_hwc_u8(rebuilt[i].as_raw(), h as usize, w as usize, 3)?;
            println!(
                "  rebuilt: PSNR {:.2} dB against the input at {size}×{size}",
                v2l::psnr(&a, &b, PsnrChannels::Rgb)?
            );
            let stem = path
                .file_stem()
                .map_or("image".into(), |s| s.to_string_lossy().to_string());
            let out = PathBuf::from(format!("{stem}.rebuilt.png"));
            rebuilt[i].save(&out)?;
            println!("  wrote {}", out.display());
        }
        Ok(())
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = parse()?;
    let (device, precision) = (args.device, args.precision);
    run_on(device, CpuBackend::Flex, precision, Tokenize(args))?
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
