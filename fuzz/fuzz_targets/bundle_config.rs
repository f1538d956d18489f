//! Model configuration JSON: a bundle's `config.json` (`Bundle::open`, which
//! checks format, version and the model configuration before it opens any
//! weights) and a bare model `config.json` (`ModelConfig::from_json_file`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_model::bundle::Bundle;
use v2l_model::ModelConfig;

fuzz_target!(|data: &[u8]| {
    let path = v2l_fuzz::write_scratch("config.json", data);
    let _ = Bundle::open(v2l_fuzz::scratch_dir());
    if let Ok(config) = ModelConfig::from_json_file(&path) {
        let _ = config.encoder_out_channels();
        let _ = config.cross_attn_dim_head();
        let _ = config.grid_for(224, 224);
        let dd = &config.ddconfig;
        let _ = dd.mid_channels();
        for i in 0..dd.levels() {
            let _ = dd.level_channels(i);
            let _ = dd.encoder_level_attention(i);
            let _ = dd.decoder_level_attention(i);
        }
        let _ = config.vl_preprocess();
    }
});
