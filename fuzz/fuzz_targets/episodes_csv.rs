//! Few-shot episode CSV files (`episodes::parse_csv`, free-form and with the
//! 2-way / 5-way 1-shot shapes the evaluation asks for) and class-name
//! mappings (`ClassNames::parse`: JSON objects or `id name` lines).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_prompt::episodes::parse_csv;
use v2l_prompt::ClassNames;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for shape in [None, Some((2, 1)), Some((5, 1)), Some((5, 5))] {
        if let Ok(episodes) = parse_csv(text, shape, "fuzz.csv") {
            for e in &episodes {
                let _ = e.classes();
            }
        }
    }
    if let Ok(names) = ClassNames::parse(text, "fuzz.txt") {
        let _ = names.name("n01440764");
    }
});
