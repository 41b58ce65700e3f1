//! Domain estimates against a literal, per-respondent implementation of SPEC 5.2.

use std::path::Path;

use super::*;
use crate::config::Instrument;
use crate::estimate::{estimate_institutions, YearOnYear};
use crate::score::score;
use crate::validate::{Instant, Response};

// A wide margin of error makes every institution with two respondents eligible.
const PARAMS: Params = Params { margin_of_error: 0.9, min_floor: 2, suppression_min_n: 1 };

struct World {
    master: Master,
    regions: Regions,
}

fn world(master_rows: &str) -> World {
    let regions = Regions::load(Path::new("config/reference/regions.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    std::fs::write(
        &path,
        format!(
            "institution_code,institution_name,institution_type,province_code,district_code,headcount\n{master_rows}"
        ),
    )
    .unwrap();
    World { master: Master::load(&path, &regions).unwrap(), regions }
}

/// A respondent: institution code, work district, overall numerator k (s = k/7).
type Person = (&'static str, &'static str, u32);

fn kept(w: &World, people: &[Person]) -> Vec<Response<'static>> {
    people
        .iter()
        .enumerate()
        .map(|(i, (inst, district, k))| {
            let mut answers = [0u8; 21];
            for v in 0..*k as usize {
                answers[3 * v + (i % 3)] = 1;
            }
            Response {
                response_id: format!("r{i}").into(),
                respondent: i as u128,
                submitted_at: Instant { secs: 0, nanos: 0 },
                institution: w.master.index_of(inst).unwrap(),
                district: w.regions.district_index_of(district).unwrap(),
                answers,
            }
        })
        .collect()
}

fn run(w: &World, people: &[Person], params: &Params) -> (Vec<InstitutionEstimate>, Domains) {
    let scale = Scale::of(Instrument::Votes, 1, 5);
    let acc = kept(w, people);
    let sums = score(&acc, w.master.len(), Instrument::Votes);
    let inst = estimate_institutions(&w.master, &sums, &scale, params, &Previous::default());
    let domains = estimate_domains(&w.master, &w.regions, &sums, &inst, &scale, params, &Previous::default());
    (inst, domains)
}

/// SPEC 5.2 literally: weights, ratio, z per respondent, stratum sums.
fn literal(
    w: &World,
    people: &[Person],
    in_domain: &dyn Fn(&str) -> bool,
    eligible: &dyn Fn(&str) -> bool,
) -> (f64, f64, f64) {
    let headcount = |code: &str| w.master.institutions[w.master.index_of(code).unwrap() as usize].headcount as f64;
    let n_of = |code: &str| people.iter().filter(|p| p.0 == code).count() as f64;
    let rows: Vec<(&str, bool, f64, f64)> = people
        .iter()
        .filter(|p| eligible(p.0))
        .map(|p| (p.0, in_domain(p.1), headcount(p.0) / n_of(p.0), p.2 as f64 / 7.0))
        .collect();
    let big_w: f64 = rows.iter().filter(|r| r.1).map(|r| r.2).sum();
    let r: f64 = rows.iter().filter(|r| r.1).map(|r| r.2 * r.3).sum::<f64>() / big_w;
    let mut v = 0.0;
    let mut codes: Vec<&str> = rows.iter().map(|r| r.0).collect();
    codes.sort();
    codes.dedup();
    for code in codes {
        let z: Vec<f64> =
            rows.iter().filter(|x| x.0 == code).map(|x| if x.1 { x.2 * (x.3 - r) / big_w } else { 0.0 }).collect();
        let n_h = z.len() as f64;
        if z.len() < 2 {
            continue;
        }
        let f = (n_h / headcount(code)).min(1.0);
        let mean = z.iter().sum::<f64>() / n_h;
        let ss: f64 = z.iter().map(|x| (x - mean) * (x - mean)).sum();
        v += (1.0 - f) * n_h / (n_h - 1.0) * ss;
    }
    (big_w, 100.0 * r, 100.0 * v.sqrt())
}

const MASTER: &str = "KEMENKEU,Keuangan,kementerian,31,,1000\n\
                      KAB-KUDUS,Kudus,kabupaten,33,3319,50\n\
                      KAB-DEMAK,Demak,kabupaten,33,3321,40\n\
                      PROV-JATENG,Jawa Tengah,provinsi,33,,500\n\
                      KOTA-SOLO,Surakarta,kota,33,3372,3\n\
                      KOTA-MAGELANG,Magelang,kota,33,3371,1\n";

fn people() -> Vec<Person> {
    vec![
        // A central institution whose staff sit in several districts and provinces.
        ("KEMENKEU", "3171", 7),
        ("KEMENKEU", "3171", 2),
        ("KEMENKEU", "3319", 5),
        ("KEMENKEU", "3319", 1),
        ("KEMENKEU", "3321", 4),
        ("KEMENKEU", "3273", 6),
        ("KAB-KUDUS", "3319", 3),
        ("KAB-KUDUS", "3319", 6),
        ("KAB-KUDUS", "3319", 4),
        ("KAB-KUDUS", "3321", 0),
        ("KAB-DEMAK", "3321", 2),
        ("KAB-DEMAK", "3321", 7),
        ("KAB-DEMAK", "3321", 5),
        ("PROV-JATENG", "3319", 6),
        ("PROV-JATENG", "3372", 3),
        ("PROV-JATENG", "3321", 1),
        // An institution with one respondent (headcount 3: min_required = 2, so not eligible).
        ("KOTA-SOLO", "3372", 4),
        // An eligible stratum with one respondent (N = 1): taken with certainty, no variance.
        ("KOTA-MAGELANG", "3319", 2),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(1.0)
}

#[test]
fn domains_match_the_literal_formulas() {
    let w = world(MASTER);
    let ppl = people();
    let (inst, d) = run(&w, &ppl, &PARAMS);
    let eligible = |code: &str| inst[w.master.index_of(code).unwrap() as usize].eligible;
    assert!(!eligible("KOTA-SOLO"));
    assert!(eligible("KOTA-MAGELANG"));
    let check = |row: &DomainEstimate, in_domain: &dyn Fn(&str) -> bool| {
        let (pop, index, se) = literal(&w, &ppl, in_domain, &eligible);
        let idx = row.indices.as_ref().unwrap();
        assert!(close(row.population_estimate, pop), "{}: {} vs {pop}", row.code, row.population_estimate);
        assert!(close(idx.overall, index), "{}: {} vs {index}", row.code, idx.overall);
        assert!(close(idx.se.unwrap(), se), "{}: se {} vs {se}", row.code, idx.se.unwrap());
    };
    let codes: Vec<&str> = d.districts.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["3171", "3273", "3319", "3321", "3372"]);
    for row in &d.districts {
        let code = row.code.clone();
        check(row, &move |dist: &str| dist == code);
    }
    for row in &d.provinces {
        let code = row.code.clone();
        check(row, &move |dist: &str| dist.starts_with(&code));
    }
    check(&d.national, &|_| true);
}

#[test]
fn counts_and_row_existence() {
    let w = world(MASTER);
    let (_, d) = run(&w, &people(), &PARAMS);
    let kudus = d.districts.iter().find(|r| r.code == "3319").unwrap();
    assert_eq!(kudus.n_respondents, 2 + 3 + 1 + 1);
    assert_eq!(kudus.n_institutions, 4);
    // Solo's only eligible respondent is the province's; Solo's own institution is not eligible.
    let solo = d.districts.iter().find(|r| r.code == "3372").unwrap();
    assert_eq!(solo.n_respondents, 1);
    assert_eq!(solo.n_institutions_seated, 0);
    assert!(solo.inst_mean.is_none());
    assert_eq!(d.national.n_respondents, 17);
    assert_eq!(d.national.n_institutions, 5);
    assert_eq!(d.provinces.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(), ["31", "32", "33"]);
}

#[test]
fn headline_means_are_unweighted_over_seated_institutions() {
    let w = world(MASTER);
    let (inst, d) = run(&w, &people(), &PARAMS);
    let index = |code: &str| inst[w.master.index_of(code).unwrap() as usize].indices.as_ref().unwrap().overall;
    let jateng = d.provinces.iter().find(|p| p.code == "33").unwrap();
    // Seated in province 33 and eligible: Kudus, Demak, the province, Magelang (Solo is not).
    assert_eq!(jateng.n_institutions_seated, 4);
    let expected = (index("KAB-KUDUS") + index("KAB-DEMAK") + index("PROV-JATENG") + index("KOTA-MAGELANG")) / 4.0;
    assert!(close(jateng.inst_mean.as_ref().unwrap().overall, expected));
    assert_eq!(d.national.n_institutions_seated, 5);
    let kudus = d.districts.iter().find(|r| r.code == "3319").unwrap();
    assert_eq!(kudus.inst_mean.as_ref().unwrap().overall, index("KAB-KUDUS"));
}

#[test]
fn single_institution_domain_equals_institution_estimate() {
    let w = world("KAB-KUDUS,Kudus,kabupaten,33,3319,50\n");
    let ppl: Vec<Person> =
        vec![("KAB-KUDUS", "3319", 3), ("KAB-KUDUS", "3319", 6), ("KAB-KUDUS", "3319", 4), ("KAB-KUDUS", "3319", 0)];
    let params = Params { min_floor: 1, margin_of_error: 0.5, ..PARAMS };
    let (inst, d) = run(&w, &ppl, &params);
    let a = inst[0].indices.as_ref().unwrap();
    let b = d.districts[0].indices.as_ref().unwrap();
    assert!(close(a.overall, b.overall));
    assert!(close(a.se.unwrap(), b.se.unwrap()));
    assert!(close(d.districts[0].population_estimate, 50.0));
}

#[test]
fn suppression_nulls_indices_but_keeps_counts() {
    let w = world(MASTER);
    let params = Params { suppression_min_n: 3, ..PARAMS };
    // Magelang (n = 1) is suppressed, so it cannot be seated anywhere.
    let (_, d) = run(&w, &people(), &params);
    let bandung = d.districts.iter().find(|r| r.code == "3273").unwrap();
    assert!(bandung.suppressed);
    assert!(bandung.indices.is_none() && bandung.inst_mean.is_none() && bandung.rank_national.is_none());
    assert_eq!(bandung.n_respondents, 1);
    assert!(bandung.population_estimate > 0.0);
}

#[test]
fn ranks_within_province_and_nation() {
    let w = world(MASTER);
    let (_, d) = run(&w, &people(), &PARAMS);
    let ranked: Vec<i64> = d.districts.iter().filter_map(|r| r.rank_national).collect();
    assert_eq!(ranked.len(), d.districts.len());
    let best = d
        .districts
        .iter()
        .max_by(|a, b| a.indices.as_ref().unwrap().overall.total_cmp(&b.indices.as_ref().unwrap().overall))
        .unwrap();
    assert_eq!(best.rank_national, Some(1));
    assert_eq!(best.rank_in_province, Some(1));
    let in_33: Vec<i64> =
        d.districts.iter().filter(|r| r.code.starts_with("33")).filter_map(|r| r.rank_in_province).collect();
    let mut sorted = in_33.clone();
    sorted.sort();
    assert_eq!(sorted[0], 1);
    assert_eq!(d.districts.iter().find(|r| r.code == "3171").unwrap().rank_in_province, Some(1));
}

#[test]
fn kudus_year_on_year_from_published_figures() {
    // SPEC 9: Kabupaten Kudus 62.1 in 2022, 61.1 in 2023: delta −1.0, B both years.
    let yoy = YearOnYear::new(Some(62.1), Some(61.1));
    assert_eq!(crate::catalogue::round_to(yoy.delta.unwrap(), 1), -1.0);
    assert_eq!(crate::catalogue::Category::of_index(62.1).letter(), "B");
    assert_eq!(crate::catalogue::Category::of_index(61.1).letter(), "B");
    assert_eq!(YearOnYear::new(None, Some(61.1)).delta, None);
    assert_eq!(YearOnYear::new(Some(62.1), None).delta, None);
}

#[test]
fn lonely_stratum_adds_no_variance() {
    // Magelang's one respondent (N = 1) is in Kudus: the district's SE must equal the one
    // computed without Magelang's stratum term, i.e. the literal formula skipping n_h < 2
    // (checked in domains_match_the_literal_formulas); here: Magelang alone gives SE 0.
    let w = world("KOTA-MAGELANG,Magelang,kota,33,3371,1\n");
    let params = Params { min_floor: 1, ..PARAMS };
    let (inst, d) = run(&w, &[("KOTA-MAGELANG", "3371", 5)], &params);
    assert!(inst[0].eligible);
    assert_eq!(inst[0].indices.as_ref().unwrap().se, None);
    let idx = d.districts[0].indices.as_ref().unwrap();
    assert_eq!(idx.se, Some(0.0));
    assert_eq!(idx.ci95(), Some((idx.overall, idx.overall)));
}
