//! What to fix first (`GET /v1/fix-first`), against a hand computation
//! over random attributed reports, and the caps on the values attribution
//! names, across a restart. The real binary on a real SQLite file.

mod common;

use std::collections::{HashMap, HashSet};

use common::{Collector, Rng};
use serde_json::{json, Value};

const PAGE: &str = "https://a.example/shop";

fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

fn p75(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    nearest_rank(&values, 75.0)
}

/// The final value and attribution of one metric instance.
struct Truth {
    metric: &'static str,
    value: f64,
    attribution: Option<Value>,
}

#[test]
fn fix_first_matches_a_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--rate-per-ip", "0"]);
    let mut rng = Rng::new(0xF1F1);
    let lcp_targets = ["img.hero", "h1", "div.banner > img", "#promo"];
    let cls_sources = ["#ad-slot", "div.cookie", "footer"];
    let inp_targets = ["button.buy", "input#q", "a.nav"];
    let scripts = [
        "https://a.example/app.js",
        "https://cdn.a.example/vendor.js",
        "https://tags.tracker.example/t.js",
    ];
    let mut truth: HashMap<String, Truth> = HashMap::new();
    for v in 0..300 {
        let mut metrics = Vec::new();
        let attributed = rng.below(5) != 0; // some agents send none
        let lcp = (rng.below(60) * 100) as f64;
        let lcp_a = json!({"target": lcp_targets[rng.below(4) as usize], "timeToFirstByte": rng.below(800),
            "resourceLoadDelay": rng.below(500), "resourceLoadDuration": rng.below(2000), "elementRenderDelay": rng.below(300),
            "loadState": "complete", "url": "https://cdn.a.example/hero.jpg"});
        metrics.push(("LCP", format!("lcp-{v}"), lcp, lcp_a));
        let cls = [0.0, 0.05, 0.12, 0.3, 0.5][rng.below(5) as usize];
        let cls_a = json!({"largestShiftTarget": cls_sources[rng.below(3) as usize], "largestShiftValue": cls, "largestShiftTime": 1000, "loadState": "complete"});
        metrics.push(("CLS", format!("cls-{v}"), cls, cls_a));
        if rng.below(2) == 0 {
            for step in 0..1 + rng.below(2) {
                // INP grows: a re-report, with the later interaction's attribution.
                let inp = (50 + step * 300 + rng.below(400)) as f64;
                let inp_a = json!({"interactionTarget": inp_targets[rng.below(3) as usize], "interactionType": "pointer",
                    "inputDelay": rng.below(100), "processingDuration": rng.below(300), "presentationDelay": rng.below(100),
                    "longestScript": {"url": scripts[rng.below(3) as usize], "function": "f", "duration": rng.below(250)}});
                metrics.push(("INP", format!("inp-{v}"), inp, inp_a));
            }
        }
        for (name, id, value, attribution) in metrics {
            let mut m = json!({"name": name, "value": value, "delta": value, "id": id, "rating": "good", "navigationType": "navigate"});
            if attributed {
                m["attribution"] = attribution.clone();
            }
            let b = json!({"schemaVersion": 1, "page": PAGE, "pageViewId": format!("pv-{v}"), "metrics": [m]});
            assert_eq!(c.beacon(&b.to_string()).status, 204);
            let t = truth.entry(id).or_insert(Truth {
                metric: name,
                value,
                attribution: None,
            });
            t.value = value;
            if attributed {
                t.attribution = Some(attribution);
            }
        }
    }
    let poor = |metric: &str, v: f64| match metric {
        "LCP" => v > 4000.0,
        "CLS" => v > 0.25,
        _ => v > 500.0,
    };
    let f = c.get(&format!("/v1/fix-first?page={PAGE}&window=1h")).json();
    for (metric, key, list) in [
        ("LCP", "target", "items"),
        ("CLS", "largestShiftTarget", "items"),
        ("INP", "interactionTarget", "items"),
    ] {
        let all: Vec<&Truth> = truth.values().filter(|t| t.metric == metric).collect();
        let poor_total = all.iter().filter(|t| poor(metric, t.value)).count() as u64;
        let got = &f["metrics"][metric];
        assert_eq!(got["count"], all.len(), "{metric}");
        assert_eq!(got["poor"], poor_total, "{metric}");
        let attributed: Vec<&&Truth> = all.iter().filter(|t| t.attribution.is_some()).collect();
        assert_eq!(got["attributed"], attributed.len(), "{metric}");
        let mut by: HashMap<String, Vec<f64>> = HashMap::new();
        for t in &attributed {
            by.entry(t.attribution.as_ref().unwrap()[key].as_str().unwrap().to_string())
                .or_default()
                .push(t.value);
        }
        let items = got[list].as_array().unwrap();
        assert_eq!(items.len(), by.len(), "{metric}: every target listed");
        for item in items {
            let values = &by[item["target"].as_str().unwrap()];
            let n_poor = values.iter().filter(|&&v| poor(metric, v)).count() as u64;
            assert_eq!(item["count"], values.len(), "{metric} {item}");
            assert_eq!(item["p75"].as_f64(), Some(p75(values.clone())), "{metric} {item}");
            assert_eq!(item["poor"], n_poor, "{metric} {item}");
            let share = if poor_total == 0 {
                0.0
            } else {
                n_poor as f64 / poor_total as f64
            };
            assert!(
                (item["poorShare"].as_f64().unwrap() - share).abs() < 1e-12,
                "{metric} {item}"
            );
        }
        let order: Vec<(u64, u64)> = items
            .iter()
            .map(|i| (i["poor"].as_u64().unwrap(), i["count"].as_u64().unwrap()))
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] >= w[1]),
            "{metric}: most poor samples first: {order:?}"
        );
    }
    // Subparts at p75.
    for (metric, names) in [
        (
            "LCP",
            &[
                "timeToFirstByte",
                "resourceLoadDelay",
                "resourceLoadDuration",
                "elementRenderDelay",
            ][..],
        ),
        ("INP", &["inputDelay", "processingDuration", "presentationDelay"][..]),
    ] {
        for name in names {
            let values: Vec<f64> = truth
                .values()
                .filter(|t| t.metric == metric)
                .filter_map(|t| t.attribution.as_ref()?[name].as_f64())
                .collect();
            assert_eq!(
                f["metrics"][metric]["subparts"][name].as_f64(),
                Some(p75(values)),
                "{metric} {name}"
            );
        }
    }
    // INP's scripts by host, first party or not.
    let inp_poor_total = truth
        .values()
        .filter(|t| t.metric == "INP" && poor("INP", t.value))
        .count() as u64;
    let mut hosts: HashMap<String, (Vec<f64>, u64)> = HashMap::new();
    for t in truth.values().filter(|t| t.metric == "INP") {
        let Some(a) = &t.attribution else { continue };
        let url = a["longestScript"]["url"].as_str().unwrap();
        let host = url.split('/').nth(2).unwrap().to_string();
        let e = hosts.entry(host).or_default();
        e.0.push(a["longestScript"]["duration"].as_f64().unwrap());
        e.1 += poor("INP", t.value) as u64;
    }
    let got = f["metrics"]["INP"]["scripts"].as_array().unwrap();
    assert_eq!(got.len(), hosts.len());
    for s in got {
        let host = s["target"].as_str().unwrap();
        let (durations, n_poor) = &hosts[host];
        assert_eq!(s["count"], durations.len(), "{host}");
        assert_eq!(s["p75"].as_f64(), Some(p75(durations.clone())), "{host}");
        assert_eq!(s["poor"], *n_poor, "{host}");
        assert!((s["poorShare"].as_f64().unwrap() - *n_poor as f64 / inp_poor_total.max(1) as f64).abs() < 1e-12);
        assert_eq!(
            s["firstParty"],
            host.ends_with("a.example") && !host.contains("tracker"),
            "{host}"
        );
    }
    // One list, the most poor samples first.
    let actions = f["actions"].as_array().unwrap();
    assert!(actions.len() >= 10);
    let poors: Vec<u64> = actions.iter().map(|a| a["poor"].as_u64().unwrap()).collect();
    assert!(poors.windows(2).all(|w| w[0] >= w[1]), "{poors:?}");
    let kinds: HashSet<&str> = actions.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["element", "shift-source", "interaction-target", "script"]
            .into_iter()
            .collect()
    );
    // The whole site answers the same (one page here); a page without
    // reports, nothing.
    assert_eq!(
        c.get("/v1/fix-first?site=a.example&window=1h").json()["metrics"],
        f["metrics"]
    );
    let none = c.get("/v1/fix-first?page=https://a.example/none&window=1h").json();
    assert_eq!(none["metrics"], json!({}));
}

/// A hostile page inventing selectors: past 100 distinct LCP elements, the
/// rest are stored as `(other)`, and the caps hold across a restart.
#[test]
fn the_values_attribution_names_are_capped_per_page() {
    let dir = tempfile::tempdir().unwrap();
    let sent = std::cell::Cell::new(0);
    let send = |c: &Collector, i: usize, page: &str| {
        sent.set(sent.get() + 1);
        let b = json!({"schemaVersion": 1, "page": page, "metrics": [
            {"name": "LCP", "value": 1000, "delta": 1000, "id": format!("l-{}", sent.get()), "rating": "good",
             "navigationType": "navigate", "attribution": {"target": format!("#el-{i}"), "url": format!("https://cdn.example/{i}.jpg")}}]});
        assert_eq!(c.beacon(&b.to_string()).status, 204);
    };
    let targets = |c: &Collector| -> HashMap<String, usize> {
        let mut n = HashMap::new();
        for r in c.get("/v1/export?format=json").json().as_array().unwrap() {
            if r["page"] == PAGE {
                *n.entry(r["attribution"]["target"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        n
    };
    {
        let c = Collector::start(dir.path(), &["--rate-per-ip", "0"]);
        for i in 0..130 {
            send(&c, i, PAGE);
        }
        let t = targets(&c);
        assert_eq!(t.len(), 101, "100 distinct and (other)");
        assert_eq!(t["(other)"], 30);
        // A value already kept stays itself; another page has room of its own.
        send(&c, 5, PAGE);
        send(&c, 0, "https://a.example/other");
        let t = targets(&c);
        assert_eq!(t["#el-5"], 2);
        assert!(c
            .get("/v1/export?format=json")
            .body
            .contains("https://cdn.example/0.jpg"));
        assert!(c.terminate().success());
    }
    let c = Collector::start(dir.path(), &["--rate-per-ip", "0"]);
    send(&c, 500, PAGE);
    assert_eq!(targets(&c)["(other)"], 31, "the cap rebuilt at start-up");
    let f = c.get(&format!("/v1/fix-first?page={PAGE}&window=1h")).json();
    assert_eq!(
        f["metrics"]["LCP"]["items"].as_array().unwrap().len(),
        10,
        "the top 10 only"
    );
    assert_eq!(f["metrics"]["LCP"]["items"][0]["target"], "(other)", "the most samples");
}
