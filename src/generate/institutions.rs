//! The synthetic institution master of `generate`: 34 ministries, 46 agencies, one provincial
//! government per province and one regency/city government per district of the regions file
//! (632 with the shipped regions), their headcounts, and how many respondents each gets.
//!
//! Codes and names depend only on the regions file, so every year and seed has the same codes
//! (year-on-year joins work). Realistic headcounts, institution effects and participation
//! profiles depend on the seed only; a year adds a small headcount drift. The number of
//! respondents per institution is planned so that a chosen number of institutions reach the
//! Slovin minimum (SPEC 5.1), scaling headcounts down for small samples.

use std::io::Write;
use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::model::{self, normal, SD_INSTITUTION, SD_INSTITUTION_VALUE, SD_INSTITUTION_YEAR};
use crate::catalogue::VALUE_COUNT;
use crate::error::{Error, Result};
use crate::reference::{InstitutionType, Regions};

/// Province where central institutions are seated (DKI Jakarta).
pub const CENTRAL_SEAT: &str = "31";

/// Ministries: code, name, approximate number of ASN.
const MINISTRIES: [(&str, &str, u32); 34] = [
    ("KEMENSETNEG", "Kementerian Sekretariat Negara", 2600),
    ("KEMENDAGRI", "Kementerian Dalam Negeri", 4500),
    ("KEMENLU", "Kementerian Luar Negeri", 4000),
    ("KEMHAN", "Kementerian Pertahanan", 42000),
    ("KEMENAG", "Kementerian Agama", 88000),
    ("KEMENKUMHAM", "Kementerian Hukum dan Hak Asasi Manusia", 62000),
    ("KEMENKEU", "Kementerian Keuangan", 78000),
    ("KEMENDIKBUDRISTEK", "Kementerian Pendidikan, Kebudayaan, Riset, dan Teknologi", 41000),
    ("KEMENKES", "Kementerian Kesehatan", 52000),
    ("KEMENSOS", "Kementerian Sosial", 4300),
    ("KEMNAKER", "Kementerian Ketenagakerjaan", 4800),
    ("KEMENPERIN", "Kementerian Perindustrian", 6500),
    ("KEMENDAG", "Kementerian Perdagangan", 3500),
    ("KESDM", "Kementerian Energi dan Sumber Daya Mineral", 5600),
    ("KEMENPUPR", "Kementerian Pekerjaan Umum dan Perumahan Rakyat", 21000),
    ("KEMENHUB", "Kementerian Perhubungan", 25000),
    ("KOMINFO", "Kementerian Komunikasi dan Informatika", 3800),
    ("KEMENTAN", "Kementerian Pertanian", 19000),
    ("KLHK", "Kementerian Lingkungan Hidup dan Kehutanan", 15000),
    ("KKP", "Kementerian Kelautan dan Perikanan", 10500),
    ("KEMENDESA", "Kementerian Desa, Pembangunan Daerah Tertinggal, dan Transmigrasi", 2300),
    ("ATR-BPN", "Kementerian Agraria dan Tata Ruang/Badan Pertanahan Nasional", 36000),
    ("BAPPENAS", "Kementerian Perencanaan Pembangunan Nasional/Bappenas", 1300),
    ("KEMENPANRB", "Kementerian Pendayagunaan Aparatur Negara dan Reformasi Birokrasi", 1000),
    ("KEMENBUMN", "Kementerian Badan Usaha Milik Negara", 1000),
    ("KEMENKOPUKM", "Kementerian Koperasi dan Usaha Kecil dan Menengah", 1200),
    ("KEMENPAREKRAF", "Kementerian Pariwisata dan Ekonomi Kreatif", 1800),
    ("KEMENPPPA", "Kementerian Pemberdayaan Perempuan dan Perlindungan Anak", 1000),
    ("KEMENPORA", "Kementerian Pemuda dan Olahraga", 1100),
    ("KEMENINVES", "Kementerian Investasi/Badan Koordinasi Penanaman Modal", 1200),
    ("KEMENKOPOLHUKAM", "Kementerian Koordinator Bidang Politik, Hukum, dan Keamanan", 1000),
    ("KEMENKOEKON", "Kementerian Koordinator Bidang Perekonomian", 1000),
    ("KEMENKOPMK", "Kementerian Koordinator Bidang Pembangunan Manusia dan Kebudayaan", 1000),
    ("KEMENKOMARVES", "Kementerian Koordinator Bidang Kemaritiman dan Investasi", 1000),
];

/// Agencies: code, name, approximate number of ASN.
const AGENCIES: [(&str, &str, u32); 46] = [
    ("BKN", "Badan Kepegawaian Negara", 2800),
    ("BPS", "Badan Pusat Statistik", 16000),
    ("LAN", "Lembaga Administrasi Negara", 1100),
    ("ANRI", "Arsip Nasional Republik Indonesia", 1000),
    ("BPKP", "Badan Pengawasan Keuangan dan Pembangunan", 7500),
    ("BMKG", "Badan Meteorologi, Klimatologi, dan Geofisika", 4900),
    ("BNPB", "Badan Nasional Penanggulangan Bencana", 1000),
    ("BNN", "Badan Narkotika Nasional", 4500),
    ("BNPT", "Badan Nasional Penanggulangan Terorisme", 1000),
    ("BPOM", "Badan Pengawas Obat dan Makanan", 5600),
    ("BIG", "Badan Informasi Geospasial", 1000),
    ("BSN", "Badan Standardisasi Nasional", 1000),
    ("BAPETEN", "Badan Pengawas Tenaga Nuklir", 1000),
    ("BRIN", "Badan Riset dan Inovasi Nasional", 15000),
    ("BKKBN", "Badan Kependudukan dan Keluarga Berencana Nasional", 5500),
    ("LKPP", "Lembaga Kebijakan Pengadaan Barang/Jasa Pemerintah", 1000),
    ("BSSN", "Badan Siber dan Sandi Negara", 1700),
    ("BAKAMLA", "Badan Keamanan Laut", 1200),
    ("BASARNAS", "Badan Nasional Pencarian dan Pertolongan", 3600),
    ("BP2MI", "Badan Pelindungan Pekerja Migran Indonesia", 1300),
    ("BPIP", "Badan Pembinaan Ideologi Pancasila", 1000),
    ("PERPUSNAS", "Perpustakaan Nasional Republik Indonesia", 1100),
    ("LEMHANNAS", "Lembaga Ketahanan Nasional", 1000),
    ("SETJEN-DPR", "Sekretariat Jenderal Dewan Perwakilan Rakyat", 2400),
    ("SETJEN-MPR", "Sekretariat Jenderal Majelis Permusyawaratan Rakyat", 1000),
    ("SETJEN-DPD", "Sekretariat Jenderal Dewan Perwakilan Daerah", 1000),
    ("SETJEN-KY", "Sekretariat Jenderal Komisi Yudisial", 1000),
    ("SETJEN-MK", "Kepaniteraan dan Sekretariat Jenderal Mahkamah Konstitusi", 1000),
    ("MA", "Mahkamah Agung", 31000),
    ("KEJAGUNG", "Kejaksaan Republik Indonesia", 24000),
    ("BPK", "Badan Pemeriksa Keuangan", 6500),
    ("KPK", "Komisi Pemberantasan Korupsi", 1600),
    ("SETJEN-KPU", "Sekretariat Jenderal Komisi Pemilihan Umum", 13000),
    ("BAWASLU", "Badan Pengawas Pemilihan Umum", 6000),
    ("ORI", "Ombudsman Republik Indonesia", 1000),
    ("SETKAB", "Sekretariat Kabinet", 1000),
    ("KSP", "Kantor Staf Presiden", 1000),
    ("BNPP", "Badan Nasional Pengelola Perbatasan", 1000),
    ("BAPANAS", "Badan Pangan Nasional", 1000),
    ("BARANTIN", "Badan Karantina Indonesia", 6000),
    ("BRGM", "Badan Restorasi Gambut dan Mangrove", 1000),
    ("BP-BATAM", "Badan Pengusahaan Kawasan Perdagangan Bebas dan Pelabuhan Bebas Batam", 1500),
    ("OIKN", "Otorita Ibu Kota Nusantara", 1000),
    ("KPPU", "Komisi Pengawas Persaingan Usaha", 1000),
    ("LPSK", "Lembaga Perlindungan Saksi dan Korban", 1000),
    ("KOMNASHAM", "Komisi Nasional Hak Asasi Manusia", 1000),
];

/// Institutions that no longer exist (merged into BRIN and others): realistic unknown codes.
pub const DEFUNCT_CODES: [&str; 6] = ["LAPAN", "BATAN", "BPPT", "LIPI", "BEKRAF", "KEMENRISTEK"];

/// How an institution takes part in the survey (stable for a seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Reaches its Slovin minimum.
    Eligible,
    /// More respondents than its headcount (`headcount_exceeded`); eligible too.
    Exceeded,
    /// Some respondents, fewer than the minimum.
    Short,
    /// 1 to 9 respondents: suppressed.
    Tiny,
    /// Took no part.
    Zero,
    /// Realistic mode: a response rate, eligibility as it falls.
    Natural,
}

/// One institution as generated.
#[derive(Debug, Clone)]
pub struct GenInstitution {
    /// Code (upper-case, stable across years and seeds).
    pub code: String,
    /// Name.
    pub name: String,
    /// Type.
    pub kind: InstitutionType,
    /// Province of the seat.
    pub province_code: String,
    /// Index into `Regions::districts` of the seat (regencies and cities).
    pub district: Option<usize>,
    /// Realistic national headcount (before the year's drift and any scaling).
    pub base_headcount: f64,
    /// The year's headcount N, as written to the master.
    pub headcount: i64,
    /// Participation profile.
    pub status: Status,
    /// Planned respondents (distinct persons) this year.
    pub planned: u64,
    /// Logit shifts of the seven values (institution + institution × value + year).
    pub effect: [f64; VALUE_COUNT],
    margin: f64,
    fill: f64,
    short_fraction: f64,
    tiny: u64,
    exceed: f64,
    rate: f64,
    drift: f64,
}

/// Slovin minimum with the default estimation settings (e = 0.05, floor 30), SPEC 5.1.
pub fn min_required(headcount: i64) -> i64 {
    let n = headcount as f64;
    let slovin = (n / (1.0 + n * 0.0025)).ceil() as i64;
    headcount.min(slovin.max(30))
}

/// Builds the institutions of the regions, with the seed's stable traits and the year's drift
/// and effects. Respondents are not planned yet.
pub fn build(regions: &Regions, seed: u64, year: i32) -> Result<Vec<GenInstitution>> {
    if !regions.provinces.contains_key(CENTRAL_SEAT) {
        return Err(Error::Usage(format!(
            "regions file has no province {CENTRAL_SEAT} (DKI Jakarta) to seat central institutions"
        )));
    }
    let mut out = Vec::with_capacity(80 + regions.provinces.len() + regions.districts.len());
    let central =
        |code: &str, name: &str, kind, n: u32| GenInstitution::new(code, name, kind, CENTRAL_SEAT, None, f64::from(n));
    for (code, name, n) in MINISTRIES {
        out.push(central(code, name, InstitutionType::Kementerian, n));
    }
    for (code, name, n) in AGENCIES {
        out.push(central(code, name, InstitutionType::Lembaga, n));
    }
    for (code, name) in &regions.provinces {
        let base = if code == CENTRAL_SEAT { 15_500.0 } else { 7_000.0 };
        out.push(GenInstitution::new(
            &format!("PROV-{code}"),
            &format!("Pemerintah Provinsi {name}"),
            InstitutionType::Provinsi,
            code,
            None,
            base,
        ));
    }
    for (i, d) in regions.districts.iter().enumerate() {
        let kind = if d.name.starts_with("Kota") { InstitutionType::Kota } else { InstitutionType::Kabupaten };
        let (prefix, base) = match kind {
            InstitutionType::Kota => ("KOTA", 3_800.0),
            _ => ("KAB", 5_200.0),
        };
        // Java is dense, Papua sparse.
        let region_factor = match d.province_code.as_str() {
            "32" | "33" | "35" | "36" => 1.5,
            p if p.starts_with('9') => 0.5,
            _ => 1.0,
        };
        out.push(GenInstitution::new(
            &format!("{prefix}-{}", d.code),
            &format!("Pemerintah {}", d.name),
            kind,
            &d.province_code,
            Some(i),
            base * region_factor,
        ));
    }

    // Stable traits: one stream per institution code, so adding a district elsewhere does not
    // reshuffle everyone.
    for inst in out.iter_mut() {
        let mut rng = model::stream(&[seed, 0x1257, code_hash(&inst.code)]);
        let jitter = match inst.kind {
            InstitutionType::Kementerian | InstitutionType::Lembaga => 0.15,
            InstitutionType::Provinsi => 0.45,
            _ => 0.5,
        };
        let (lo, hi) = match inst.kind {
            InstitutionType::Kementerian | InstitutionType::Lembaga => (900.0, 95_000.0),
            InstitutionType::Provinsi => (1_800.0, 16_000.0),
            _ => (350.0, 15_000.0),
        };
        let factor = if inst.kind == InstitutionType::Provinsi && inst.province_code == CENTRAL_SEAT {
            1.0
        } else {
            (jitter * normal(&mut rng)).exp()
        };
        inst.base_headcount = (inst.base_headcount * factor).clamp(lo, hi);
        let u_h = SD_INSTITUTION * normal(&mut rng);
        for v in 0..VALUE_COUNT {
            inst.effect[v] = u_h + SD_INSTITUTION_VALUE * normal(&mut rng);
        }
        inst.margin = rng.random_range(0.05..0.6);
        inst.fill = rng.random_range(0.2..1.0);
        inst.short_fraction = rng.random_range(0.35..0.9);
        inst.tiny = rng.random_range(1..=9);
        inst.exceed = rng.random_range(0.02..0.15);
        inst.rate = (0.5 * normal(&mut rng) - 0.125).exp();
        // The year: headcount drift and a small wobble of the effects.
        let mut yrng = model::stream(&[seed, 0x7EA2, year as u64, code_hash(&inst.code)]);
        inst.drift = (1.0 + 0.015 * normal(&mut yrng)).clamp(0.95, 1.05);
        for v in 0..VALUE_COUNT {
            inst.effect[v] += SD_INSTITUTION_YEAR * normal(&mut yrng);
        }
    }
    Ok(out)
}

fn code_hash(code: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(code.as_bytes())
}

impl GenInstitution {
    fn new(
        code: &str,
        name: &str,
        kind: InstitutionType,
        province: &str,
        district: Option<usize>,
        base: f64,
    ) -> GenInstitution {
        GenInstitution {
            code: code.to_string(),
            name: name.to_string(),
            kind,
            province_code: province.to_string(),
            district,
            base_headcount: base,
            headcount: 1,
            status: Status::Natural,
            planned: 0,
            effect: [0.0; VALUE_COUNT],
            margin: 0.0,
            fill: 0.0,
            short_fraction: 0.0,
            tiny: 1,
            exceed: 0.0,
            rate: 1.0,
            drift: 1.0,
        }
    }

    fn scaled_headcount(&self, scale: f64) -> i64 {
        ((self.base_headcount * self.drift * scale).round() as i64).max(1)
    }

    /// Respondents planned for headcount `n`; `t` in [0, 1] fills eligible institutions
    /// between their minimum and nearly everyone; `k` multiplies natural response rates.
    fn plan_for(&self, n: i64, t: f64, k: f64) -> u64 {
        let mr = min_required(n);
        let planned = match self.status {
            Status::Zero => 0,
            Status::Tiny => (self.tiny as i64).min(n - 1).min(mr - 1),
            Status::Short => ((mr as f64) * self.short_fraction).floor() as i64,
            Status::Eligible => {
                let lo = n.min(((mr as f64) * (1.0 + self.margin)).ceil() as i64);
                let top = ((n as f64) * 0.97).floor() as i64;
                lo + ((t * self.fill * (top - lo).max(0) as f64).floor() as i64)
            }
            Status::Exceeded => n + ((n as f64 * self.exceed).ceil() as i64).max(1),
            Status::Natural => ((n as f64 * (k * self.rate).min(0.97)).round() as i64).min(n),
        };
        planned.max(0) as u64
    }
}

/// The outcome of planning one year.
#[derive(Debug, Clone, Copy)]
pub struct PlanInfo {
    /// Factor applied to realistic headcounts.
    pub scale: f64,
}

/// Assigns participation profiles (targeted: exactly `eligible_target` reach the minimum, a
/// few exceed their headcount, a few are tiny or absent) and plans the year's respondents so
/// that they add up to `respondents` exactly.
pub fn plan(insts: &mut [GenInstitution], seed: u64, respondents: u64, eligible_target: usize) -> PlanInfo {
    let m = insts.len();
    // Profiles are stable for a seed (an institution eligible in 2023 usually is in 2024).
    let mut order: Vec<usize> = (0..m).collect();
    let mut rng = model::stream(&[seed, 0x57A7]);
    model::shuffle(&mut rng, &mut order);
    let few = |share: f64| ((m as f64 * share).round() as usize).max(1).min(m);
    let exceeded = few(0.012);
    let zero = few(0.015);
    let tiny = few(0.03);
    let targeted = eligible_target > 0;
    let eligible = if targeted { eligible_target.min(m) } else { exceeded.min(m) };
    for (rank, &i) in order.iter().enumerate() {
        insts[i].status = if rank < exceeded.min(eligible) {
            Status::Exceeded
        } else if rank < eligible {
            if targeted {
                Status::Eligible
            } else {
                Status::Natural
            }
        } else if rank < eligible + zero {
            Status::Zero
        } else if rank < eligible + zero + tiny {
            Status::Tiny
        } else if targeted {
            Status::Short
        } else {
            Status::Natural
        };
    }

    let total = |insts: &[GenInstitution], s: f64, t: f64, k: f64| -> u64 {
        insts.iter().map(|i| i.plan_for(i.scaled_headcount(s), t, k)).sum()
    };
    // An exceeded institution must stay affordable: at most 2 % of all respondents.
    let afford = |insts: &mut [GenInstitution], s: f64| {
        for inst in insts.iter_mut() {
            if inst.status == Status::Exceeded {
                let n = inst.scaled_headcount(s);
                if inst.plan_for(n, 0.0, 0.0) as f64 > 0.02 * respondents as f64 {
                    inst.status = if targeted { Status::Eligible } else { Status::Natural };
                }
            }
        }
    };

    let (scale, t, k);
    if targeted {
        let r = respondents;
        if total(insts, 1.0, 0.0, 0.0) >= r {
            // Shrink headcounts: the largest scale whose minimal plan fits.
            let (mut lo, mut hi): (f64, f64) = (1e-6, 1.0);
            for _ in 0..80 {
                let mid = (lo * hi).sqrt();
                if total(insts, mid, 0.0, 0.0) <= r {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            scale = lo;
            t = 0.0;
        } else if total(insts, 1.0, 1.0, 0.0) >= r {
            scale = 1.0;
            let (mut lo, mut hi) = (0.0, 1.0);
            for _ in 0..80 {
                let mid = 0.5 * (lo + hi);
                if total(insts, 1.0, mid, 0.0) <= r {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            t = lo;
        } else {
            let (mut lo, mut hi) = (1.0, 1.0);
            while total(insts, hi, 1.0, 0.0) < r && hi < 1e6 {
                hi *= 2.0;
            }
            for _ in 0..80 {
                let mid = 0.5 * (lo + hi);
                if total(insts, mid, 1.0, 0.0) <= r {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            scale = lo;
            t = 1.0;
        }
        afford(insts, scale);
        k = 0.0;
    } else {
        let headcounts: f64 = insts.iter().map(|i| i.base_headcount * i.drift).sum();
        scale = (respondents as f64 / (0.85 * headcounts)).max(1.0);
        afford(insts, scale);
        let (mut lo, mut hi) = (0.0, 1.0);
        while total(insts, scale, 0.0, hi) < respondents && hi < 1e3 {
            hi *= 2.0;
        }
        for _ in 0..80 {
            let mid = 0.5 * (lo + hi);
            if total(insts, scale, 0.0, mid) <= respondents {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        k = lo;
        t = 0.0;
    }

    for inst in insts.iter_mut() {
        inst.headcount = inst.scaled_headcount(scale);
        inst.planned = inst.plan_for(inst.headcount, t, k);
    }
    settle(insts, respondents);
    PlanInfo { scale }
}

/// Adjusts the planned counts so they add up to `respondents` exactly, touching first the
/// institutions whose eligibility does not change.
fn settle(insts: &mut [GenInstitution], respondents: u64) {
    let mut by_size: Vec<usize> = (0..insts.len()).collect();
    by_size.sort_by(|&a, &b| insts[b].headcount.cmp(&insts[a].headcount).then(a.cmp(&b)));
    let sum: u64 = insts.iter().map(|i| i.planned).sum();
    if sum < respondents {
        let mut need = respondents - sum;
        // Room below 97 % of the headcount, largest first, among those that take part.
        for &i in &by_size {
            let inst = &mut insts[i];
            if need == 0 {
                break;
            }
            if matches!(inst.status, Status::Eligible | Status::Natural) {
                let top = ((inst.headcount as f64) * 0.97).floor() as u64;
                let add = top.saturating_sub(inst.planned).min(need);
                inst.planned += add;
                need -= add;
            }
        }
        // Otherwise the largest participating institution takes the rest (exceeding).
        if need > 0 {
            let target = by_size
                .iter()
                .copied()
                .find(|&i| matches!(insts[i].status, Status::Eligible | Status::Natural | Status::Exceeded))
                .unwrap_or(by_size[0]);
            insts[target].planned += need;
        }
    } else if sum > respondents {
        let mut excess = sum - respondents;
        let mut take = |insts: &mut [GenInstitution], i: usize, floor: u64| {
            let inst = &mut insts[i];
            let cut = inst.planned.saturating_sub(floor).min(excess);
            inst.planned -= cut;
            excess -= cut;
        };
        // 1. Slack above the minimum of eligible institutions.
        for &i in &by_size {
            if matches!(insts[i].status, Status::Eligible | Status::Natural) {
                let n = insts[i].headcount;
                let floor = (min_required(n) as f64 * 1.02).ceil().min(n as f64) as u64;
                take(insts, i, floor);
            }
        }
        // 2. Institutions that are short anyway, then everyone, smallest first.
        for &i in &by_size {
            if insts[i].status == Status::Short {
                take(insts, i, 0);
            }
        }
        for &i in by_size.iter().rev() {
            take(insts, i, 0);
        }
    }
}

/// Writes the master CSV (SPEC 2.1).
pub fn write_master(path: &Path, insts: &[GenInstitution], regions: &Regions) -> Result<()> {
    let mut text =
        String::from("institution_code,institution_name,institution_type,province_code,district_code,headcount\n");
    for inst in insts {
        let district = inst.district.map(|d| regions.districts[d].code.as_str()).unwrap_or("");
        let name = if inst.name.contains([',', '"']) {
            format!("\"{}\"", inst.name.replace('"', "\"\""))
        } else {
            inst.name.clone()
        };
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            inst.code,
            name,
            inst.kind.as_str(),
            inst.province_code,
            district,
            inst.headcount
        ));
    }
    let tmp = path.with_extension("csv.partial");
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, "creating", e))?;
    file.write_all(text.as_bytes()).map_err(|e| Error::io(&tmp, "writing", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "renaming into place", e))
}

/// Work districts: where the staff of an institution work.
#[derive(Debug, Clone)]
pub struct Geography {
    national: Table,
    jakarta: Table,
    provinces: Vec<(String, Table)>,
}

#[derive(Debug, Clone, Default)]
struct Table {
    districts: Vec<usize>,
    cumulative: Vec<f64>,
}

impl Table {
    fn push(&mut self, district: usize, weight: f64) {
        let last = self.cumulative.last().copied().unwrap_or(0.0);
        self.districts.push(district);
        self.cumulative.push(last + weight);
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let u = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= u).min(self.districts.len() - 1);
        Some(self.districts[i])
    }
}

impl Geography {
    /// Weights each district by the realistic headcount of its own government.
    pub fn new(regions: &Regions, insts: &[GenInstitution]) -> Geography {
        let mut weight = vec![1000.0; regions.districts.len()];
        for inst in insts {
            if let Some(d) = inst.district {
                weight[d] = inst.base_headcount;
            }
        }
        let mut national = Table::default();
        let mut jakarta = Table::default();
        let mut provinces: Vec<(String, Table)> =
            regions.provinces.keys().map(|p| (p.clone(), Table::default())).collect();
        for (d, district) in regions.districts.iter().enumerate() {
            national.push(d, weight[d]);
            if district.province_code == CENTRAL_SEAT {
                jakarta.push(d, weight[d]);
            }
            if let Some((_, t)) = provinces.iter_mut().find(|(p, _)| *p == district.province_code) {
                t.push(d, weight[d]);
            }
        }
        Geography { national, jakarta, provinces }
    }

    fn province(&self, code: &str) -> Option<&Table> {
        self.provinces.iter().find(|(p, _)| p == code).map(|(_, t)| t)
    }

    /// A work district for a member of `inst`'s staff.
    pub fn work_district(&self, rng: &mut ChaCha8Rng, inst: &GenInstitution) -> usize {
        let pick = match inst.kind {
            InstitutionType::Kabupaten | InstitutionType::Kota => {
                if rng.random::<f64>() < 0.92 {
                    inst.district
                } else {
                    self.province(&inst.province_code).and_then(|t| t.pick(rng)).or(inst.district)
                }
            }
            InstitutionType::Provinsi => self.province(&inst.province_code).and_then(|t| t.pick(rng)),
            InstitutionType::Kementerian | InstitutionType::Lembaga => {
                if rng.random::<f64>() < 0.45 {
                    self.jakarta.pick(rng)
                } else {
                    self.national.pick(rng)
                }
            }
        };
        pick.or_else(|| self.national.pick(rng)).unwrap_or(0)
    }
}
