//! Evaluation logs (`v2l_prompt::eval::JsonlLog::open`): JSON lines of keyed
//! records (and a settings line); an interrupted last line is dropped and the
//! file rewritten.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_prompt::eval::JsonlLog;

fuzz_target!(|data: &[u8]| {
    let path = v2l_fuzz::write_scratch("log.jsonl", data);
    if let Ok(log) = JsonlLog::open(&path) {
        let _ = (log.len(), log.records().count());
        let _ = log.is_done("0");
    }
});
