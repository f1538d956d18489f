//! `v2l complete`: continue a prompt with a frozen LLM (greedy by default).

use crate::args::CompleteArgs;
use crate::error::{err, CliError};
use std::path::Path;

use serde_json::json;
use v2l::burn::tensor::backend::Backend;
use v2l::llm::gguf::GgufFile;
use v2l::llm::tokenizer::{AddSpecial, LlmTokenizer};
use v2l::llm::{GenerateOptions, Llama, LlamaWeights, Sampling, StopReason};

/// Run `v2l complete`.
pub fn run(args: CompleteArgs) -> Result<(), CliError> {
    let (device, precision) = (args.device.device, args.precision.into());
    crate::device::dispatch(device, crate::device::CpuBackend::Flex, precision, args)
}

impl crate::device::OnDevice for CompleteArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        run_on::<B>(&self, device)
    }
}

fn load_tokenizer(args: &CompleteArgs) -> Result<LlmTokenizer, CliError> {
    load_tokenizer_for(Some(&args.llm), args.tokenizer.as_deref())
}

/// The tokenizer of an LLM: `tokenizer` when given (`tokenizer.json`, a
/// `.gguf`'s embedded one, or LLaMA-2's `llama-tokenizer.js`), else the
/// GGUF's own, the HF folder's `tokenizer.json`, or for a Meta folder the
/// cached `llama2-vocab` asset.
pub(crate) fn load_tokenizer_for(
    llm: Option<&Path>,
    tokenizer: Option<&Path>,
) -> Result<LlmTokenizer, CliError> {
    let is_gguf = |p: &Path| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    };
    let from_gguf = |p: &Path| {
        let g = GgufFile::open(p).map_err(err)?;
        LlmTokenizer::from_gguf(&g).map_err(err)
    };
    let from_path = |p: &Path| {
        if is_gguf(p) {
            return from_gguf(p);
        }
        let is_js = p.extension().is_some_and(|e| e == "js");
        if is_js {
            LlmTokenizer::from_llama_tokenizer_js(p)
        } else {
            LlmTokenizer::from_file(p)
        }
        .map_err(err)
    };
    if let Some(p) = tokenizer {
        return from_path(p);
    }
    let Some(llm) = llm else {
        return Err(CliError::usage("no tokenizer given"));
    };
    let resolved = crate::tokenize::resolve_llm(llm)?;
    let llm = resolved.as_path();
    // A file can only be a GGUF (whatever its name says); a folder holds
    // the tokenizer beside the weights.
    if is_gguf(llm) || llm.is_file() {
        return from_gguf(llm);
    }
    if !llm.exists() {
        return Err(CliError::missing(format!(
            "{}: no such file or folder",
            llm.display()
        )));
    }
    let json = llm.join("tokenizer.json");
    if json.is_file() {
        return from_path(&json);
    }
    if llm.join("params.json").is_file() {
        let asset = v2l::assets::fetch::lookup("llama2-vocab").map_err(err)?;
        let file = asset
            .files
            .first()
            .ok_or(CliError::missing("the llama2-vocab asset lists no file"))?;
        let path = v2l::assets::fetch::file_path(asset, file).map_err(err)?;
        if path.is_file() {
            return from_path(&path);
        }
        return Err(CliError::missing(format!(
            "no tokenizer for the Meta folder {}: pass --tokenizer, or run `v2l assets fetch llama2-vocab` for LLaMA-2's",
            llm.display()
        )));
    }
    Err(CliError::missing(format!(
        "no tokenizer found for {}: pass --tokenizer",
        llm.display()
    )))
}

fn run_on<B: Backend>(args: &CompleteArgs, device: B::Device) -> Result<(), CliError> {
    let tok = load_tokenizer(args)?;
    let llm_path = crate::tokenize::resolve_llm(&args.llm)?;
    let weights = LlamaWeights::open(&llm_path).map_err(err)?;
    let model = Llama::<B>::load(&weights, &device)
        .map_err(err)?
        .into_precision(args.precision.into());
    let mode = if args.bos {
        AddSpecial::Bos
    } else if args.no_bos {
        AddSpecial::Neither
    } else {
        AddSpecial::ModelDefault
    };
    let mut ids = tok.encode(&args.prompt, mode).map_err(err)?;
    if mode == AddSpecial::ModelDefault {
        // Never let the default add an EOS after the prompt.
        if let (Some(eos), true) = (tok.eos_id(), tok.adds_eos()) {
            if ids.last() == Some(&eos) {
                ids.pop();
            }
        }
    }
    if ids.is_empty() {
        return Err(CliError::malformed("the prompt encodes to no tokens"));
    }
    let sampling = match args.temperature {
        Some(t) => Sampling::Sample {
            temperature: t,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        },
        None => Sampling::Greedy,
    };
    let stop_tokens = match (args.ignore_eos, tok.eos_id()) {
        (false, Some(e)) => vec![e],
        _ => Vec::new(),
    };
    let options = GenerateOptions {
        max_tokens: args.max_tokens,
        sampling,
        stop_tokens,
        stop_strings: args.stop.clone(),
        constraint: Default::default(),
    };
    let out = model
        .generate(std::slice::from_ref(&ids), &options, Some(&tok))
        .map_err(err)?;
    let g = out.into_iter().next().ok_or(CliError::from("no output"))?;
    // Without a stop string the text is the decoded ids minus a trailing EOS.
    let text = match (&g.stop, &g.text) {
        (StopReason::StopToken(_), _) => tok
            .decode(&g.tokens[..g.tokens.len().saturating_sub(1)], false)
            .map_err(err)?,
        (_, Some(t)) => t.clone(),
        (_, None) => String::new(),
    };
    if args.json {
        let stop = match &g.stop {
            StopReason::MaxTokens => json!("max_tokens"),
            StopReason::StopToken(t) => json!({"stop_token": t}),
            StopReason::StopString(s) => json!({"stop_string": s}),
            StopReason::CandidateComplete => json!("candidate_complete"),
        };
        println!(
            "{}",
            json!({"llm": args.llm.display().to_string(), "prompt_ids": ids, "ids": g.tokens, "text": text, "stop": stop})
        );
    } else {
        println!("{text}");
    }
    Ok(())
}
