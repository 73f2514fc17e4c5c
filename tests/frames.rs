//! Frames of real recorded runs, drawn by `ipcscope render`, audited for
//! cut numbers and words and for gauges above capacity (issue #15).
//!
//! The recordings were made once, on real processes, and committed:
//!
//! ```text
//! ipcscope snapshot --mechanisms all --duration 3 --set consumer.rate=0 --record tests/fixtures/stalled.rec
//! ipcscope snapshot --mechanisms all --duration 3 --set consumer.rate=0 \
//!     --set mach.send_mode=notify --set mach.senders=3 --record tests/fixtures/stalled-notify.rec
//! ipcscope snapshot --mechanisms all --duration 3 --record tests/fixtures/healthy.rec
//! ```
//!
//! `healthy.rec` predates the detail fields of the new diagrams (fd pairs,
//! mappings, emulated calls, per-priority counts): it keeps an old
//! recording rendering whole. The stalled ones were re-made with them.
//!
//! Every frame — 5 sizes × ko/en × 4 themes × (grid + each panel zoomed),
//! at two instants of each recording — is drawn by the function
//! `ipcscope render` calls, with the recording decoded once; a sample of
//! them runs the real command and must print the very same bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ipcscope::i18n::Lang;
use ipcscope::model::Kind;
use ipcscope::render::{self, Format, Request};
use ipcscope::snapshot::Snapshot;
use ipcscope::ui::audit::{self, Truth};
use ipcscope::ui::{Theme, View};

const EXE: &str = env!("CARGO_BIN_EXE_ipcscope");
const SIZES: [(u16, u16); 5] = [(80, 24), (100, 30), (120, 35), (160, 45), (200, 60)];
const RECORDINGS: [&str; 3] = ["stalled.rec", "stalled-notify.rec", "healthy.rec"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn ipcscope(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().expect("run ipcscope")
}

fn request(w: u16, h: u16, lang: Lang, theme: Theme, focus: Option<usize>, format: Format) -> Request {
    Request {
        at: None,
        width: w,
        height: h,
        format,
        focus,
        kinds: Kind::ALL.to_vec(),
        view: View { lang, theme, ..View::default() },
    }
}

fn lang_name(l: Lang) -> &'static str {
    match l {
        Lang::En => "en",
        Lang::Ko => "ko",
    }
}

/// The truth for frames of `snap`: the built-in sources, and every UI
/// source of this checkout (a panel file added since joins too).
fn truth(snap: &Snapshot) -> Truth {
    let mut t = Truth::new(snap);
    audit::add_sources_in(&mut t, &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui")).expect("read src/ui");
    t
}

/// The recordings are what the test says they are: all seven mechanisms,
/// and in the stalled one every channel full.
#[test]
fn the_recordings_hold_all_seven_mechanisms() {
    for name in RECORDINGS {
        let out = ipcscope(&["replay", "--check", fixture(name).to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let snap = render::snapshot_at(&fixture(name), None).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let kinds: Vec<Kind> = snap.mechanisms.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, Kind::ALL, "{name}");
        assert!(snap.run.replay, "{name}: a recorded frame says REPLAY");
        // Small enough to keep in the repository.
        let len = std::fs::metadata(fixture(name)).unwrap().len();
        assert!(len < 100_000, "{name} is {len} bytes");
    }
    for name in ["stalled.rec", "stalled-notify.rec"] {
        let stalled = render::snapshot_at(&fixture(name), None).unwrap();
        for m in &stalled.mechanisms {
            // ALPC's quota is measured in messages of the current size; its
            // clients wait one request each.
            if m.kind != Kind::Alpc {
                let c = &m.channel;
                assert!(c.depth >= c.capacity && c.capacity > 0, "{name} {:?}: {c:?}", m.kind);
            }
        }
        // Mach in notify mode keeps messages past the queue's limit.
        let mach = stalled.mechanism(Kind::Mach).unwrap();
        assert_eq!(mach.channel.over > 0, name == "stalled-notify.rec", "{name}: {:?}", mach.channel);
    }
}

/// The issue's acceptance test: at every size, in both languages and
/// every theme, the grid and each panel zoomed, no number or word is cut
/// and no gauge reads above its capacity.
#[test]
fn no_cut_number_or_word_and_no_gauge_above_capacity() {
    let mut report = Vec::new();
    let mut frames = 0;
    for name in RECORDINGS {
        for at in [Some(1.0), None] {
            let snap = render::snapshot_at(&fixture(name), at).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let truth = truth(&snap);
            for (w, h) in SIZES {
                for lang in [Lang::En, Lang::Ko] {
                    for theme in Theme::ALL {
                        for focus in std::iter::once(None).chain((1..=snap.mechanisms.len()).map(Some)) {
                            let req = request(w, h, lang, theme, focus, Format::Text);
                            let frame = render::draw(&snap, &req).unwrap_or_else(|e| panic!("{e:?}"));
                            frames += 1;
                            let mut found: Vec<String> = audit::cuts(&frame, &truth)
                                .into_iter()
                                .map(|f| format!("line {} `{}`", f.line, f.token))
                                .collect();
                            found.extend(
                                audit::gauges_over(&frame)
                                    .into_iter()
                                    .map(|f| format!("line {} gauge above capacity `{}`", f.line, f.token)),
                            );
                            if !found.is_empty() {
                                if let Some(dir) = std::env::var_os("FRAMES_DUMP") {
                                    let file = format!(
                                        "{name}-{}-{w}x{h}-{}-{}-{}.txt",
                                        at.map_or("end".into(), |s| s.to_string()),
                                        lang_name(lang),
                                        theme.name(),
                                        focus.map_or("grid".into(), |n| n.to_string())
                                    );
                                    std::fs::write(
                                        Path::new(&dir).join(file),
                                        format!("{frame}\n{}\n", found.join("\n")),
                                    )
                                    .expect("FRAMES_DUMP");
                                }
                                let at = at.map_or("end".to_string(), |s| format!("{s}s"));
                                let view = focus.map_or("grid".to_string(), |n| format!("--focus {n}"));
                                report.push(format!(
                                    "{name} at {at} {w}x{h} {} {} {view}: {}",
                                    lang_name(lang),
                                    theme.name(),
                                    found.join(", ")
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(frames >= RECORDINGS.len() * 2 * 5 * 2 * 4 * 8);
    assert!(report.is_empty(), "{} of {frames} frames cut something:\n{}", report.len(), report.join("\n"));
}

/// The command prints what the audited function draws, byte for byte.
#[test]
fn the_command_prints_the_audited_frames() {
    for name in RECORDINGS {
        let path = fixture(name);
        let snap = render::snapshot_at(&path, None).unwrap();
        for (i, (w, h)) in SIZES.into_iter().enumerate() {
            let lang = if i % 2 == 0 { Lang::En } else { Lang::Ko };
            let theme = Theme::ALL[i % Theme::ALL.len()];
            let focus = (i > 0).then_some(i);
            let want = render::draw(&snap, &request(w, h, lang, theme, focus, Format::Text)).unwrap();
            let size = format!("{w}x{h}");
            let mut args = vec!["render", path.to_str().unwrap(), "--size", &size, "--lang", lang_name(lang)];
            args.extend(["--theme", theme.name()]);
            let n = focus.map(|n| n.to_string());
            if let Some(n) = &n {
                args.extend(["--focus", n]);
            }
            let out = ipcscope(&args);
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "{args:?}");
            assert_eq!(want.lines().count(), h as usize, "{args:?}");
        }
    }
}

/// `--at` picks an instant of the recording's timeline: the stalled run
/// fills up, so the pipe holds less at 0.2 s than at the end.
#[test]
fn at_picks_an_instant() {
    let path = fixture("stalled.rec");
    let early = render::snapshot_at(&path, Some(0.2)).unwrap();
    let end = render::snapshot_at(&path, None).unwrap();
    assert!(early.t_ms <= 200 && end.t_ms > 2500, "{} {}", early.t_ms, end.t_ms);
    let depth = |s: &Snapshot| s.mechanism(Kind::Pipe).unwrap().channel.depth;
    assert!(depth(&early) < depth(&end), "{} {}", depth(&early), depth(&end));
    let out = ipcscope(&["render", path.to_str().unwrap(), "--at", "0.2", "--size", "80x24"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains(&format!("t={:.1}s", early.t_ms as f64 / 1000.0)));
}

/// `--mechanisms` keeps only those panels, numbered as drawn.
#[test]
fn mechanisms_pick_the_panels() {
    let path = fixture("stalled.rec");
    let out = ipcscope(&["render", path.to_str().unwrap(), "--mechanisms", "pipe,shm", "--size", "100x30"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(" 1  ordinary pipe") && text.contains(" 2  shared memory"), "{text}");
    assert!(!text.contains("message queue") && !text.contains("sockets"), "{text}");
}

/// Bad input is one line on stderr and exit 2, nothing on stdout.
#[test]
fn bad_input_is_one_line() {
    let dir = std::env::temp_dir().join(format!("ipcscope-frames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    /// Removes the directory however the test ends.
    struct Gone(PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(dir.clone());
    let garbage = dir.join("garbage.rec");
    std::fs::write(&garbage, b"\x00\x01 not a recording\n").unwrap();
    let truncated = dir.join("truncated.rec");
    let bytes = std::fs::read(fixture("stalled.rec")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let rec = fixture("stalled.rec");
    let rec = rec.to_str().unwrap();
    let missing = dir.join("missing.rec");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["render", missing.to_str().unwrap()], "missing.rec"),
        (vec!["render", garbage.to_str().unwrap()], "not an ipcscope recording"),
        (vec!["render", truncated.to_str().unwrap()], "truncated"),
        (vec!["render", dir.to_str().unwrap()], ""),
        (vec!["render", rec, "--size", "80by24"], "--size"),
        (vec!["render", rec, "--size", "0x24"], "--size"),
        (vec!["render", rec, "--at", "99"], "past the end"),
        (vec!["render", rec, "--at", "-1"], "--at"),
        (vec!["render", rec, "--at", "NaN"], "--at"),
        (vec!["render", rec, "--focus", "8"], "--focus 8"),
        (vec!["render", rec, "--focus", "0"], "--focus 0"),
        (vec!["render", rec, "--format", "png"], "png"),
        (vec!["render", rec, "--lang", "fr"], "fr"),
        (vec!["render", rec, "--theme", "neon"], "neon"),
        (vec!["render", rec, "--set", "consumer.rate=0"], "--set"),
        (vec!["render", rec, "--record", "x.rec"], "--record"),
    ];
    for (args, says) in cases {
        let out = ipcscope(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!Path::new("x.rec").exists());
}

/// A small well-formedness check of XML: tags nest and close, attributes
/// are quoted, `&` starts a known entity, no `<` in text or values.
fn check_xml(doc: &str) -> Result<usize, String> {
    let body = doc.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>").ok_or("no XML declaration")?;
    let mut stack: Vec<&str> = Vec::new();
    let mut elements = 0;
    let mut rest = body;
    let entity_ok = |s: &str| -> Result<(), String> {
        for (i, _) in s.match_indices('&') {
            let tail = &s[i + 1..];
            let end = tail.find(';').ok_or(format!("bare & in {s:?}"))?;
            if !["amp", "lt", "gt", "quot", "apos"].contains(&&tail[..end]) {
                return Err(format!("unknown entity in {s:?}"));
            }
        }
        if s.contains('<') {
            return Err(format!("< in {s:?}"));
        }
        Ok(())
    };
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        if text.contains('>') {
            return Err(format!("> in text {text:?}"));
        }
        entity_ok(text)?;
        if !text.trim().is_empty() && stack.is_empty() {
            return Err(format!("text outside the root: {text:?}"));
        }
        let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if top != name.trim() {
                return Err(format!("</{name}> closes <{top}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-') {
            return Err(format!("bad tag name {name:?}"));
        }
        // Attributes: name="value" …
        let mut attrs = tag[name_end..].trim();
        let mut seen = Vec::new();
        while !attrs.is_empty() {
            let eq = attrs.find('=').ok_or(format!("attribute without value in <{name}>"))?;
            let an = attrs[..eq].trim();
            if seen.contains(&an) {
                return Err(format!("attribute {an} twice in <{name}>"));
            }
            seen.push(an);
            let after = &attrs[eq + 1..];
            let q = after.chars().next().ok_or("no value")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted attribute {an} in <{name}>"));
            }
            let end = after[1..].find(q).ok_or("unterminated value")? + 1;
            entity_ok(&after[1..end])?;
            attrs = after[end + 1..].trim_start();
        }
        elements += 1;
        if stack.is_empty() && elements > 1 {
            return Err("a second root element".into());
        }
        if !self_closing {
            stack.push(name);
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed <{}>", stack.join("> <")));
    }
    if !rest.trim().is_empty() {
        return Err("text after the root".into());
    }
    Ok(elements)
}

#[test]
fn the_xml_check_refuses_broken_documents() {
    let ok = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg a=\"1\"><text x='2'>a &amp; b</text><rect/></svg>\n";
    assert_eq!(check_xml(ok), Ok(3));
    for bad in [
        "<svg><text>a & b</text></svg>",
        "<svg><text>a < b</text></svg>",
        "<svg><text></svg></text>",
        "<svg a=1></svg>",
        "<svg a=\"1\" a=\"2\"></svg>",
        "<svg>",
        "<svg></svg><svg></svg>",
        "<svg><text>&nbsp;</text></svg>",
    ] {
        let doc = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{bad}");
        assert!(check_xml(&doc).is_err(), "{bad}");
    }
}

/// The SVG is well-formed XML with a background, a monospace font list
/// with a Korean font, and real text: Hangul in Korean, every theme.
#[test]
fn svg_is_valid_and_carries_hangul() {
    let path = fixture("stalled.rec");
    for (theme, lang) in [("default", "ko"), ("projector", "ko"), ("light", "en"), ("mono", "ko")] {
        let out = ipcscope(&[
            "render",
            path.to_str().unwrap(),
            "--size",
            "160x45",
            "--format",
            "svg",
            "--lang",
            lang,
            "--theme",
            theme,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let svg = String::from_utf8(out.stdout).unwrap();
        let n = check_xml(&svg).unwrap_or_else(|e| panic!("{theme} {lang}: {e}"));
        assert!(n > 100, "{n} elements");
        assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1600\" height=\"990\""), "{theme}");
        assert!(svg.contains("<rect width=\"100%\" height=\"100%\" fill=\"#"), "{theme}: no background");
        assert!(svg.contains("font-family=\"D2Coding, 'Noto Sans Mono CJK KR',"), "{theme}");
        // The text of the frame is in the picture, not drawn as shapes.
        // Each <text> run's characters (one <tspan> a cell), runs apart.
        let texts: String = svg
            .split("<text ")
            .skip(1)
            .filter_map(|t| t.split_once("</text>").map(|(t, _)| t))
            .map(|t| {
                t.split("<tspan ").skip(1).filter_map(|c| c.split_once('>')?.1.split_once("</tspan>")).map(|c| c.0)
            })
            .map(|chars| chars.collect::<String>())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(texts.contains("ipcscope") && texts.contains("64.0K/64.0K"), "{theme}: {texts}");
        let hangul = texts.chars().filter(|c| ('\u{ac00}'..='\u{d7a3}').contains(c)).count();
        if lang == "ko" {
            assert!(hangul > 50, "{theme}: {hangul} Hangul syllables");
            assert!(texts.contains("생산자"), "{theme}");
        } else {
            assert_eq!(hangul, 3, "{theme}: only the footer's 한국어");
        }
        if theme != "mono" {
            assert!(svg.contains("font-weight=\"bold\""), "{theme}");
        }
    }
}
