//! Deterministic synthetic AWS CloudTrail traffic for tripline's examples and tests.
//!
//! tripline's detections need realistic input with a known answer: several weeks of
//! ordinary history (so per-actor baselines can be fitted) and a handful of planted
//! anomalies in the last week (so we know exactly what should fire). [`generate`] writes
//! one CloudTrail record per line (NDJSON) and returns the planted anomalies.
//!
//! Same [`Options`] give byte-identical output: all randomness comes from a small
//! splitmix64 generator seeded from `Options::seed` and the hour being generated, and
//! actor identities (principal ids, access keys) are derived from their names alone so
//! they stay stable across seeds.
//!
//! Records are serialised by a tiny ordered-JSON writer (string escaping delegated to
//! serde_json) rather than `serde_json::Value`, because `Value`'s map is sorted without
//! the `preserve_order` feature and we want the field order real CloudTrail uses.
//!
//! Output is sorted by `eventTime`, except that about one record in 600 is held back by
//! 20 s to 5 min, like CloudTrail's delivery jitter; nothing is ever more than 5 min out
//! of order. Failed security-group calls carry `errorCode`/`errorMessage` and a null
//! `responseElements`, as real EC2 failures do.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc, Weekday};
use std::io::{self, Write};

/// The six EC2 calls that count as a firewall change for the security-group detection.
pub const SECURITY_GROUP_EVENTS: [&str; 6] = [
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
];

/// The two fake accounts of the first organisation (the only one by default).
pub const ACCOUNTS: [&str; 2] = ["123456789012", "210987654321"];

/// Longest delivery delay applied to a record, in seconds.
pub const MAX_JITTER_SECS: i64 = 300;

pub struct Options {
    pub start: DateTime<Utc>,
    pub weeks: u32,
    pub seed: u64,
    /// Organisations, each two accounts with the same people, roles and habits (identities
    /// derived from the account, so distinct per organisation; source addresses shared, as
    /// organisations behind one egress share them). The first is [`ACCOUNTS`]; 1 by default.
    pub organizations: u32,
    /// The automation role decrypts with a KMS key of its organisation's other account, and
    /// CloudTrail delivers such a cross-account call to the key's owner as well: a second record
    /// with the owner's `recipientAccountId`, its own `eventID` and the `sharedEventID` both carry.
    pub cross_account: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            // A Monday, so week-relative plants land on the intended weekdays.
            start: Utc.with_ymd_and_hms(2026, 10, 5, 0, 0, 0).unwrap(),
            weeks: 4,
            seed: 7,
            organizations: 1,
            cross_account: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    /// "batch_job_created" or "security_group_spike".
    pub kind: &'static str,
    /// Clock hour of the anomaly, "%Y-%m-%dT%H:00:00Z".
    pub hour_start: String,
    /// userIdentity.principalId for spikes, the account id for batch jobs.
    pub actor: String,
    /// Successful security-group calls, or JobCreated events, in that hour.
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub planted: Vec<Planted>,
}

/// Writes the whole data set to `out` and reports what was planted.
///
/// `start` is floored to the hour; `weeks * 168` clock hours are generated. Plants sit in
/// the last week at fixed day/hour offsets from that week's first midnight (Tue 10:00,
/// Wed 02:00, Thu 21:00, Fri 15:00 when `start` is a Monday).
pub fn generate(opts: &Options, out: &mut dyn Write) -> io::Result<Summary> {
    let t0 = opts.start.timestamp().div_euclid(3600) * 3600;
    let hours = i64::from(opts.weeks) * 168;
    let plan = Plan::new(t0, opts.weeks);
    let mut worlds: Vec<World> = (0..opts.organizations.max(1)).map(|o| World::new(organization(o), opts.cross_account)).collect();
    let mut sink = Sink::new(opts.seed);

    for h in 0..hours {
        let hs = t0 + h * 3600;
        for (o, world) in worlds.iter_mut().enumerate() {
            // The first organisation's stream is the same whatever the number of organisations.
            let seed = if o == 0 { opts.seed } else { mix(opts.seed, o as u64 ^ 0x4f52_4741_4e49_5a45) };
            let mut rng = Rng::new(mix(seed, h as u64));
            gen_hour(world, &plan, hs, &mut rng, &mut sink);
        }
    }

    let mut recs = sink.recs;
    recs.sort_unstable_by_key(|r| (r.0, r.1));
    for (_, _, line) in &recs {
        out.write_all(line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(Summary { records: recs.len() as u64, planted: worlds.iter().flat_map(|w| plan.planted(w)).collect() })
}

/// The two account ids of organisation `o`: [`ACCOUNTS`] for the first, twelve digits derived
/// from `o` for the others.
pub fn organization(o: u32) -> [String; 2] {
    if o == 0 {
        return ACCOUNTS.map(str::to_string);
    }
    let id = |n: u64| format!("{:012}", 100_000_000_000 + mix(u64::from(o), n) % 900_000_000_000);
    [id(1), id(2)]
}

// ---------------------------------------------------------------------------
// Randomness

/// splitmix64: tiny, good enough for synthetic data, and fully reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        // Modulo bias is irrelevant at these sizes.
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn weighted(&mut self, ws: &[u32]) -> usize {
        let total: u64 = ws.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in ws.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        ws.len() - 1
    }
    fn chars(&mut self, set: &[u8], n: usize) -> String {
        (0..n).map(|_| *self.pick(set) as char).collect()
    }
    fn hex(&mut self, n: usize) -> String {
        self.chars(b"0123456789abcdef", n)
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            8 + (b >> 62),
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }
}

fn mix(seed: u64, h: u64) -> u64 {
    Rng::new(seed ^ h.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next()
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Identity strings depend only on the name, so the same "organisation" appears under
/// every seed.
fn name_rng(name: &str) -> Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    Rng::new(h)
}

// ---------------------------------------------------------------------------
// Ordered JSON

#[derive(Clone)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl From<&str> for J {
    fn from(s: &str) -> J {
        J::Str(s.to_string())
    }
}
impl From<String> for J {
    fn from(s: String) -> J {
        J::Str(s)
    }
}
impl From<&String> for J {
    fn from(s: &String) -> J {
        J::Str(s.clone())
    }
}
impl From<bool> for J {
    fn from(b: bool) -> J {
        J::Bool(b)
    }
}
impl From<i64> for J {
    fn from(n: i64) -> J {
        J::Int(n)
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> J {
        J::Arr(v)
    }
}

macro_rules! obj {
    ($($k:literal : $v:expr),* $(,)?) => { J::Obj(vec![$(($k, J::from($v))),*]) };
}

fn write_str(buf: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *buf, s).expect("writing to a Vec cannot fail");
}

impl J {
    fn write(&self, buf: &mut Vec<u8>) {
        match self {
            J::Null => buf.extend_from_slice(b"null"),
            J::Bool(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
            J::Int(n) => buf.extend_from_slice(n.to_string().as_bytes()),
            J::Str(s) => write_str(buf, s),
            J::Arr(v) => {
                buf.push(b'[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    x.write(buf);
                }
                buf.push(b']');
            }
            J::Obj(kv) => {
                buf.push(b'{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    write_str(buf, k);
                    buf.push(b':');
                    v.write(buf);
                }
                buf.push(b'}');
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Output buffer with delivery jitter

struct Sink {
    /// (delivery time, generation order, serialised record)
    recs: Vec<(i64, u64, Vec<u8>)>,
    jitter: Rng,
}

impl Sink {
    fn new(seed: u64) -> Self {
        Sink { recs: Vec::new(), jitter: Rng::new(seed ^ 0x6a09_e667_f3bc_c908) }
    }
    /// Sorting on `event time + delay` bounds how far any record trails an earlier one
    /// by its own delay, hence by MAX_JITTER_SECS.
    fn push(&mut self, t: i64, rec: J) {
        let delay = if self.jitter.below(600) == 0 {
            self.jitter.range(20, MAX_JITTER_SECS as u64) as i64
        } else {
            0
        };
        let mut buf = Vec::with_capacity(1536);
        rec.write(&mut buf);
        let seq = self.recs.len() as u64;
        self.recs.push((t + delay, seq, buf));
    }
}

// ---------------------------------------------------------------------------
// Time helpers

fn ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).expect("timestamp in range")
}

fn fmt_time(t: i64) -> String {
    ts(t).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn fmt_hour(t: i64) -> String {
    ts(t).format("%Y-%m-%dT%H:00:00Z").to_string()
}

fn is_weekday(t: i64) -> bool {
    !matches!(ts(t).weekday(), Weekday::Sat | Weekday::Sun)
}

fn hour_of_day(t: i64) -> u32 {
    ts(t).hour()
}

fn is_office(t: i64) -> bool {
    is_weekday(t) && (9..18).contains(&hour_of_day(t))
}

// ---------------------------------------------------------------------------
// Actors

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    User,
    Role,
    Root,
}

#[derive(Clone, Copy, PartialEq)]
enum Ua {
    CliLinux,
    CliMac,
    Console,
    Terraform,
}

struct Actor {
    kind: Kind,
    /// userName for users, session name for roles.
    name: &'static str,
    role: &'static str,
    account: String,
    principal_id: String,
    arn: String,
    access_key: String,
    role_id: String,
    role_arn: String,
    ip: &'static str,
    ua: Ua,
}

impl Actor {
    fn user(name: &'static str, account: &str, ip: &'static str, ua: Ua) -> Actor {
        let mut r = name_rng(&format!("{account}/user/{name}"));
        Actor {
            kind: Kind::User,
            name,
            role: "",
            account: account.to_string(),
            principal_id: format!("AIDA{}", r.chars(UPPER_ALNUM, 17)),
            arn: format!("arn:aws:iam::{account}:user/{name}"),
            access_key: format!("AKIA{}", r.chars(UPPER_ALNUM, 16)),
            role_id: String::new(),
            role_arn: String::new(),
            ip,
            ua,
        }
    }

    fn role(role: &'static str, session: &'static str, account: &str, ip: &'static str, ua: Ua) -> Actor {
        let mut r = name_rng(&format!("{account}/role/{role}/{session}"));
        let role_id = format!("AROA{}", r.chars(UPPER_ALNUM, 17));
        Actor {
            kind: Kind::Role,
            name: session,
            role,
            account: account.to_string(),
            principal_id: format!("{role_id}:{session}"),
            arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            access_key: format!("ASIA{}", r.chars(UPPER_ALNUM, 16)),
            role_arn: format!("arn:aws:iam::{account}:role/{role}"),
            role_id,
            ip,
            ua,
        }
    }

    fn root(account: &str, ip: &'static str) -> Actor {
        Actor {
            kind: Kind::Root,
            name: "root",
            role: "",
            account: account.to_string(),
            principal_id: account.to_string(),
            arn: format!("arn:aws:iam::{account}:root"),
            access_key: String::new(),
            role_id: String::new(),
            role_arn: String::new(),
            ip,
            ua: Ua::Console,
        }
    }

    fn identity(&self, t: i64) -> J {
        match self.kind {
            Kind::User => obj! {
                "type": "IAMUser",
                "principalId": &self.principal_id,
                "arn": &self.arn,
                "accountId": &self.account,
                "accessKeyId": &self.access_key,
                "userName": self.name,
            },
            Kind::Role => {
                // CI assumes its role at the top of each hourly run; people once a morning.
                let hs = t - t.rem_euclid(3600);
                let created = if self.ua != Ua::Terraform && hour_of_day(t) >= 9 {
                    t - t.rem_euclid(86400) + 9 * 3600 + 41
                } else {
                    hs + 3
                };
                obj! {
                    "type": "AssumedRole",
                    "principalId": &self.principal_id,
                    "arn": &self.arn,
                    "accountId": &self.account,
                    "accessKeyId": &self.access_key,
                    "sessionContext": obj! {
                        "sessionIssuer": obj! {
                            "type": "Role",
                            "principalId": &self.role_id,
                            "arn": &self.role_arn,
                            "accountId": &self.account,
                            "userName": self.role,
                        },
                        "webIdFederationData": obj! {},
                        "attributes": obj! {
                            "creationDate": fmt_time(created),
                            "mfaAuthenticated": "false",
                        },
                    },
                }
            }
            Kind::Root => obj! {
                "type": "Root",
                "principalId": &self.principal_id,
                "arn": &self.arn,
                "accountId": &self.account,
                "accessKeyId": "",
            },
        }
    }

    fn user_agent(&self, source: &str, name: &str) -> String {
        let svc = source.split('.').next().unwrap_or(source);
        match self.ua {
            Ua::CliLinux | Ua::CliMac => {
                let os = if self.ua == Ua::CliLinux {
                    "os/linux#6.8.0-45-generic md/arch#x86_64"
                } else {
                    "os/macos#23.6.0 md/arch#arm64"
                };
                format!(
                    "aws-cli/2.17.46 md/awscrt#0.21.2 ua/2.0 {os} lang/python#3.12.6 md/pyimpl#CPython \
                     cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#{}.{}",
                    if svc == "monitoring" { "cloudwatch" } else { svc },
                    kebab(name)
                )
            }
            Ua::Console => "AWS Internal".to_string(),
            Ua::Terraform => format!(
                "APN/1.0 HashiCorp/1.0 Terraform/1.9.7 (+https://www.terraform.io) \
                 terraform-provider-aws/5.72.1 (+https://registry.terraform.io/providers/hashicorp/aws) \
                 aws-sdk-go-v2/1.32.2 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64 api/{svc}#1.32.2"
            ),
        }
    }
}

/// "DescribeInstances" -> "describe-instances", as the CLI names its commands.
fn kebab(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.trim_end_matches(|c: char| c.is_ascii_digit()).chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('-');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;
const DAVE: usize = 3;
const ERIN: usize = 4;
const CI: usize = 5;
const ROOT_A: usize = 6;
const ROOT_B: usize = 7;

/// People who change security groups in office hours.
const NET_ADMINS: [usize; 4] = [ALICE, BOB, CAROL, ERIN];

/// Per-account network inventory; groups created during the run can later be deleted.
struct AccountNet {
    vpc: String,
    groups: Vec<String>,
    created: Vec<String>,
    instances: Vec<String>,
    buckets: [&'static str; 3],
}

struct World {
    actors: Vec<Actor>,
    nets: [AccountNet; 2],
    accounts: [String; 2],
    cross_account: bool,
}

impl World {
    fn new(accounts: [String; 2], cross_account: bool) -> World {
        let [a1, a2] = [accounts[0].as_str(), accounts[1].as_str()];
        let actors = vec![
            Actor::user("alice", a1, "198.51.100.24", Ua::CliLinux),
            Actor::user("bob", a1, "198.51.100.61", Ua::CliLinux),
            Actor::user("carol", a2, "203.0.113.18", Ua::CliMac),
            Actor::user("dave", a1, "198.51.100.93", Ua::Console),
            Actor::role("NetworkEngineer", "erin", a2, "203.0.113.45", Ua::CliMac),
            Actor::role("terraform-ci", "ci-runner", a1, "192.0.2.150", Ua::Terraform),
            Actor::root(a1, "198.51.100.7"),
            Actor::root(a2, "203.0.113.9"),
        ];
        let net = |account: &str, buckets| {
            let mut r = name_rng(&format!("{account}/net"));
            AccountNet {
                vpc: format!("vpc-0{}", r.hex(16)),
                groups: (0..14).map(|_| format!("sg-0{}", r.hex(16))).collect(),
                created: Vec::new(),
                instances: (0..20).map(|_| format!("i-0{}", r.hex(16))).collect(),
                buckets,
            }
        };
        World {
            actors,
            nets: [
                net(a1, ["acme-prod-artifacts", "acme-prod-customer-exports", "acme-tfstate-123456789012"]),
                net(a2, ["acme-analytics-raw", "acme-analytics-reports", "acme-logs-210987654321"]),
            ],
            accounts,
            cross_account,
        }
    }

    fn net(&mut self, account: &str) -> &mut AccountNet {
        &mut self.nets[usize::from(account != self.accounts[0])]
    }

    /// The organisation's account other than `account`.
    fn other(&self, account: &str) -> &str {
        &self.accounts[usize::from(account == self.accounts[0])]
    }
}

// ---------------------------------------------------------------------------
// Planted anomalies

const ALICE_SPIKE: u64 = 35;
const CI_SPIKE: u64 = 40;

struct Plan {
    alice_spike: Option<i64>,
    batch_a: Option<i64>,
    ci_spike: Option<i64>,
    batch_b: Option<i64>,
}

impl Plan {
    fn new(t0: i64, weeks: u32) -> Plan {
        if weeks == 0 {
            return Plan { alice_spike: None, batch_a: None, ci_spike: None, batch_b: None };
        }
        let last = t0 + i64::from(weeks - 1) * 7 * 86400;
        // Offsets from the last week's first midnight; days 1..=4 always lie inside it.
        let day0 = last - last.rem_euclid(86400);
        let at = |d: i64, h: i64| Some(day0 + d * 86400 + h * 3600);
        Plan { alice_spike: at(1, 10), batch_a: at(2, 2), ci_spike: at(3, 21), batch_b: at(4, 15) }
    }

    fn planted(&self, w: &World) -> Vec<Planted> {
        let mut v = Vec::new();
        let mut add = |kind, t: Option<i64>, actor: String, count| {
            if let Some(t) = t {
                v.push(Planted { kind, hour_start: fmt_hour(t), actor, count });
            }
        };
        add("security_group_spike", self.alice_spike, w.actors[ALICE].principal_id.clone(), ALICE_SPIKE);
        add("batch_job_created", self.batch_a, w.accounts[0].clone(), 3);
        add("security_group_spike", self.ci_spike, w.actors[CI].principal_id.clone(), CI_SPIKE);
        add("batch_job_created", self.batch_b, w.accounts[1].clone(), 1);
        v
    }
}

// ---------------------------------------------------------------------------
// Record assembly

struct Api {
    actor: usize,
    t: i64,
    region: &'static str,
    source: &'static str,
    name: &'static str,
    read_only: bool,
    req: J,
    resp: J,
    request_id: String,
    error: Option<(&'static str, String)>,
    additional: Option<J>,
    resources: Option<J>,
    ip: Option<&'static str>,
    user_agent: Option<String>,
}

impl Api {
    fn new(actor: usize, t: i64, region: &'static str, source: &'static str, name: &'static str) -> Api {
        Api {
            actor,
            t,
            region,
            source,
            name,
            read_only: true,
            req: J::Null,
            resp: J::Null,
            request_id: String::new(),
            error: None,
            additional: None,
            resources: None,
            ip: None,
            user_agent: None,
        }
    }
}

fn event_version(source: &str) -> &'static str {
    match source {
        "s3.amazonaws.com" | "kms.amazonaws.com" | "signin.amazonaws.com" => "1.08",
        _ => "1.09",
    }
}

fn host_header(source: &str, region: &str) -> String {
    let svc = source.split('.').next().unwrap_or(source);
    match svc {
        "iam" | "s3" => source.to_string(),
        _ => format!("{svc}.{region}.amazonaws.com"),
    }
}

fn request_id(rng: &mut Rng, source: &str) -> String {
    if source == "s3.amazonaws.com" {
        rng.chars(b"0123456789ABCDEF", 16)
    } else {
        rng.uuid()
    }
}

fn api_record(w: &World, rng: &mut Rng, a: Api) -> J {
    let actor = &w.actors[a.actor];
    let mut f: Vec<(&'static str, J)> = vec![
        ("eventVersion", event_version(a.source).into()),
        ("userIdentity", actor.identity(a.t)),
        ("eventTime", fmt_time(a.t).into()),
        ("eventSource", a.source.into()),
        ("eventName", a.name.into()),
        ("awsRegion", a.region.into()),
        ("sourceIPAddress", a.ip.unwrap_or(actor.ip).into()),
        ("userAgent", a.user_agent.unwrap_or_else(|| actor.user_agent(a.source, a.name)).into()),
    ];
    if let Some((code, msg)) = a.error {
        f.push(("errorCode", code.into()));
        f.push(("errorMessage", msg.into()));
    }
    f.push(("requestParameters", a.req));
    f.push(("responseElements", a.resp));
    if let Some(x) = a.additional {
        f.push(("additionalEventData", x));
    }
    let rid = if a.request_id.is_empty() { request_id(rng, a.source) } else { a.request_id };
    f.push(("requestID", rid.into()));
    f.push(("eventID", rng.uuid().into()));
    f.push(("readOnly", a.read_only.into()));
    if let Some(x) = a.resources {
        f.push(("resources", x));
    }
    f.push(("eventType", "AwsApiCall".into()));
    f.push(("managementEvent", true.into()));
    f.push(("recipientAccountId", (&actor.account).into()));
    f.push(("eventCategory", "Management".into()));
    f.push((
        "tlsDetails",
        obj! {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": host_header(a.source, a.region),
        },
    ));
    if actor.ua == Ua::Console {
        f.push(("sessionCredentialFromConsole", "true".into()));
    }
    J::Obj(f)
}

fn console_login(w: &World, rng: &mut Rng, who: usize, t: i64) -> J {
    let a = &w.actors[who];
    let login_to = "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_";
    let mut ident = vec![
        ("type", J::from(if a.kind == Kind::Root { "Root" } else { "IAMUser" })),
        ("principalId", (&a.principal_id).into()),
        ("arn", (&a.arn).into()),
        ("accountId", (&a.account).into()),
    ];
    if a.kind == Kind::Root {
        ident.push(("accessKeyId", "".into()));
    } else {
        ident.push(("userName", a.name.into()));
    }
    obj! {
        "eventVersion": "1.08",
        "userIdentity": J::Obj(ident),
        "eventTime": fmt_time(t),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": a.ip,
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
        "requestParameters": J::Null,
        "responseElements": obj! { "ConsoleLogin": "Success" },
        "additionalEventData": obj! {
            "LoginTo": format!("{login_to}{}", rng.hex(16)),
            "MobileVersion": "No",
            "MFAUsed": "Yes",
        },
        "eventID": rng.uuid(),
        "readOnly": false,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": true,
        "recipientAccountId": &a.account,
        "eventCategory": "Management",
    }
}

// ---------------------------------------------------------------------------
// Background traffic

const BG_EVENTS: [(&str, &str, bool, u32); 17] = [
    ("ec2.amazonaws.com", "DescribeInstances", true, 14),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", true, 12),
    ("ec2.amazonaws.com", "DescribeVpcs", true, 6),
    ("ec2.amazonaws.com", "ModifySecurityGroupRules", false, 2),
    ("ec2.amazonaws.com", "CreateTags", false, 3),
    ("s3.amazonaws.com", "ListBuckets", true, 7),
    ("s3.amazonaws.com", "GetBucketAcl", true, 5),
    ("sts.amazonaws.com", "GetCallerIdentity", true, 8),
    ("sts.amazonaws.com", "AssumeRole", true, 5),
    ("iam.amazonaws.com", "ListUsers", true, 3),
    ("iam.amazonaws.com", "GetRole", true, 4),
    ("kms.amazonaws.com", "Decrypt", true, 7),
    ("monitoring.amazonaws.com", "GetMetricData", true, 6),
    ("logs.amazonaws.com", "DescribeLogGroups", true, 4),
    ("lambda.amazonaws.com", "ListFunctions20150331", true, 3),
    ("ssm.amazonaws.com", "GetParameter", true, 6),
    ("cloudformation.amazonaws.com", "DescribeStacks", true, 3),
];

const SSM_PARAMS: [&str; 4] = ["/app/prod/db-host", "/app/prod/feature-flags", "/ci/terraform/version", "/shared/vpn/cidr"];
const ROLES: [&str; 4] = ["terraform-ci", "NetworkEngineer", "ReadOnlyAudit", "lambda-exporter"];
const STACKS: [&str; 3] = ["network-baseline", "observability", "app-prod"];

fn region(rng: &mut Rng) -> &'static str {
    if rng.chance(0.8) {
        "us-east-1"
    } else {
        "us-west-2"
    }
}

fn background(w: &mut World, rng: &mut Rng, who: usize, t: i64) -> J {
    let kind = w.actors[who].kind;
    let account = w.actors[who].account.clone();
    let account = account.as_str();
    let weights: Vec<u32> = BG_EVENTS
        .iter()
        .map(|&(_, name, _, wt)| if name == "AssumeRole" && kind != Kind::User { 0 } else { wt })
        .collect();
    let (source, name, read_only, _) = BG_EVENTS[rng.weighted(&weights)];
    let reg = if source == "iam.amazonaws.com" { "us-east-1" } else { region(rng) };
    let mut a = Api::new(who, t, reg, source, name);
    a.read_only = read_only;
    let net = w.net(account);
    let sg = rng.pick(&net.groups).clone();
    let inst = rng.pick(&net.instances).clone();
    let vpc = net.vpc.clone();
    let bucket = *rng.pick(&net.buckets);
    match name {
        "DescribeInstances" => {
            a.req = obj! {
                "instancesSet": obj! {},
                "filterSet": obj! { "items": vec![obj! {
                    "name": "instance-state-name",
                    "valueSet": obj! { "items": vec![obj! { "value": "running" }] },
                }] },
            };
        }
        "DescribeSecurityGroups" => {
            a.req = obj! {
                "securityGroupSet": obj! {},
                "securityGroupIdSet": obj! { "items": vec![obj! { "groupId": sg }] },
                "filterSet": obj! {},
            };
        }
        "DescribeVpcs" => {
            a.req = obj! {
                "vpcSet": obj! { "items": vec![obj! { "vpcId": vpc }] },
                "filterSet": obj! {},
            };
        }
        "ModifySecurityGroupRules" => {
            let rid = rng.uuid();
            a.request_id = rid.clone();
            a.req = obj! {
                "ModifySecurityGroupRulesRequest": obj! {
                    "GroupId": sg,
                    "SecurityGroupRule": obj! {
                        "SecurityGroupRuleId": format!("sgr-0{}", rng.hex(16)),
                        "SecurityGroupRule": obj! {
                            "Description": "office VPN",
                            "IpProtocol": "tcp",
                            "FromPort": 443i64,
                            "ToPort": 443i64,
                            "CidrIpv4": "10.8.0.0/16",
                        },
                        "tag": 1i64,
                    },
                },
            };
            a.resp = obj! {
                "ModifySecurityGroupRulesResponse": obj! {
                    "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
                    "requestId": rid,
                    "return": true,
                },
            };
        }
        "CreateTags" => {
            let rid = rng.uuid();
            a.request_id = rid.clone();
            a.req = obj! {
                "resourcesSet": obj! { "items": vec![obj! { "resourceId": inst }] },
                "tagSet": obj! { "items": vec![obj! {
                    "key": "Owner",
                    "value": w.actors[who].name,
                }] },
            };
            a.resp = obj! { "requestId": rid, "_return": true };
        }
        "ListBuckets" => {
            a.req = obj! { "Host": "s3.amazonaws.com" };
        }
        "GetBucketAcl" => {
            a.req = obj! { "bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"), "acl": "" };
        }
        "GetCallerIdentity" => {}
        "AssumeRole" => {
            let role = *rng.pick(&ROLES);
            let session = format!("{}-{}", w.actors[who].name, t);
            let role_id = format!("AROA{}", name_rng(&format!("{account}/{role}")).chars(UPPER_ALNUM, 17));
            a.req = obj! {
                "roleArn": format!("arn:aws:iam::{account}:role/{role}"),
                "roleSessionName": &session,
                "durationSeconds": 3600i64,
            };
            a.resp = obj! {
                "credentials": obj! {
                    "accessKeyId": format!("ASIA{}", rng.chars(UPPER_ALNUM, 16)),
                    "sessionToken": format!("IQoJb3JpZ2luX2VjE{}", rng.chars(UPPER_ALNUM, 48)),
                    "expiration": ts(t + 3600).format("%b %-d, %Y, %-I:%M:%S %p").to_string(),
                },
                "assumedRoleUser": obj! {
                    "assumedRoleId": format!("{role_id}:{session}"),
                    "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
                },
            };
            a.resources = Some(J::Arr(vec![obj! {
                "accountId": account,
                "type": "AWS::IAM::Role",
                "ARN": format!("arn:aws:iam::{account}:role/{role}"),
            }]));
        }
        "ListUsers" => {}
        "GetRole" => {
            a.req = obj! { "roleName": *rng.pick(&ROLES) };
        }
        "Decrypt" => {
            let owner = if w.cross_account && who == CI { w.other(account) } else { account };
            let key = format!("arn:aws:kms:{reg}:{owner}:key/{}", name_rng(owner).uuid());
            a.req = obj! {
                "encryptionContext": obj! { "aws:ssm:parameter-name": "/app/prod/db-password" },
                "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            };
            a.resources = Some(J::Arr(vec![obj! {
                "accountId": owner,
                "type": "AWS::KMS::Key",
                "ARN": key,
            }]));
        }
        "GetMetricData" => {
            a.req = obj! {
                "metricDataQueries": vec![obj! {
                    "id": "cpu",
                    "metricStat": obj! {
                        "metric": obj! {
                            "namespace": "AWS/EC2",
                            "metricName": "CPUUtilization",
                            "dimensions": vec![obj! { "name": "InstanceId", "value": inst }],
                        },
                        "period": 300i64,
                        "stat": "Average",
                    },
                    "returnData": true,
                }],
                "startTime": ts(t - 10800).format("%b %-d, %Y, %-I:%M:%S %p").to_string(),
                "endTime": ts(t).format("%b %-d, %Y, %-I:%M:%S %p").to_string(),
            };
        }
        "DescribeLogGroups" => {
            a.req = obj! { "limit": 50i64 };
        }
        "ListFunctions20150331" => {}
        "GetParameter" => {
            a.req = obj! { "name": *rng.pick(&SSM_PARAMS), "withDecryption": false };
        }
        "DescribeStacks" => {
            a.req = obj! { "stackName": *rng.pick(&STACKS) };
        }
        _ => unreachable!("every background event has a shape"),
    }
    api_record(w, rng, a)
}

// ---------------------------------------------------------------------------
// Security-group calls

/// (protocol, from, to, cidr, description)
const RULES: [(&str, i64, i64, &str, &str); 7] = [
    ("tcp", 443, 443, "10.0.0.0/16", "https from vpc"),
    ("tcp", 22, 22, "10.8.0.0/16", "ssh from office vpn"),
    ("tcp", 5432, 5432, "10.0.32.0/20", "postgres from app subnets"),
    ("tcp", 80, 80, "0.0.0.0/0", "http redirect"),
    ("tcp", 8080, 8080, "172.16.0.0/12", "internal api"),
    ("udp", 53, 53, "10.0.0.2/32", "vpc resolver"),
    ("tcp", 6379, 6379, "10.0.48.0/20", "redis from workers"),
];

const GROUP_APPS: [&str; 6] = ["web-alb", "api", "worker", "bastion", "db", "cache"];

/// Weights over SECURITY_GROUP_EVENTS: mostly rule edits, some group churn.
const SG_WEIGHTS: [u32; 6] = [12, 8, 35, 10, 25, 10];

fn ip_permissions(rule: (&str, i64, i64, &str, &str)) -> J {
    let (proto, from, to, cidr, desc) = rule;
    obj! {
        "items": vec![obj! {
            "ipProtocol": proto,
            "fromPort": from,
            "toPort": to,
            "groups": obj! {},
            "ipRanges": obj! { "items": vec![obj! { "cidrIp": cidr, "description": desc }] },
            "ipv6Ranges": obj! {},
            "prefixListIds": obj! {},
        }],
    }
}

fn sg_call(w: &mut World, rng: &mut Rng, who: usize, t: i64, mut name: &'static str, fail: bool) -> J {
    let account = w.actors[who].account.clone();
    let account = account.as_str();
    let reg = region(rng);
    let net = w.net(account);
    // Only groups created during the run are deleted, so deletes look like cleanup.
    if name == "DeleteSecurityGroup" && net.created.is_empty() {
        name = "CreateSecurityGroup";
    }
    let rule = *rng.pick(&RULES);
    let rid = rng.uuid();
    let mut a = Api::new(who, t, reg, "ec2.amazonaws.com", name);
    a.read_only = false;
    a.request_id = rid.clone();
    let target;
    match name {
        "CreateSecurityGroup" => {
            let app = *rng.pick(&GROUP_APPS);
            let gname = format!("{app}-{}", rng.hex(6));
            let sg = format!("sg-0{}", rng.hex(16));
            a.req = obj! {
                "groupName": &gname,
                "groupDescription": format!("{app} tier"),
                "vpcId": &net.vpc,
            };
            if !fail {
                a.resp = obj! {
                    "requestId": &rid,
                    "_return": true,
                    "groupId": &sg,
                    "securityGroupArn": format!("arn:aws:ec2:{reg}:{account}:security-group/{sg}"),
                };
                net.created.push(sg.clone());
            }
            target = (sg, gname);
        }
        "DeleteSecurityGroup" => {
            let i = rng.below(net.created.len() as u64) as usize;
            let sg = if fail { net.created[i].clone() } else { net.created.swap_remove(i) };
            a.req = obj! { "groupId": &sg };
            if !fail {
                a.resp = obj! { "requestId": &rid, "_return": true, "groupId": &sg };
            }
            target = (sg, String::new());
        }
        _ => {
            let sg = if !net.created.is_empty() && rng.chance(0.3) {
                rng.pick(&net.created).clone()
            } else {
                rng.pick(&net.groups).clone()
            };
            a.req = obj! { "groupId": &sg, "ipPermissions": ip_permissions(rule) };
            if !fail {
                a.resp = if name.starts_with("Authorize") {
                    let (proto, from, to, cidr, desc) = rule;
                    obj! {
                        "requestId": &rid,
                        "_return": true,
                        "securityGroupRuleSet": obj! { "items": vec![obj! {
                            "groupOwnerId": account,
                            "groupId": &sg,
                            "securityGroupRuleId": format!("sgr-0{}", rng.hex(16)),
                            "isEgress": name.ends_with("Egress"),
                            "ipProtocol": proto,
                            "fromPort": from,
                            "toPort": to,
                            "cidrIpv4": cidr,
                            "description": desc,
                        }] },
                    }
                } else {
                    obj! { "requestId": &rid, "_return": true }
                };
            }
            target = (sg, String::new());
        }
    }
    if fail {
        a.error = Some(sg_error(rng, w, who, reg, name, &target, rule));
    }
    api_record(w, rng, a)
}

fn sg_error(
    rng: &mut Rng,
    w: &World,
    who: usize,
    reg: &str,
    name: &str,
    (sg, gname): &(String, String),
    (proto, from, to, cidr, _): (&str, i64, i64, &str, &str),
) -> (&'static str, String) {
    let account = w.actors[who].account.clone();
    let account = account.as_str();
    if rng.chance(0.4) {
        return (
            "Client.UnauthorizedOperation",
            format!(
                "You are not authorized to perform this operation. User: {} is not authorized to perform: \
                 ec2:{name} on resource: arn:aws:ec2:{reg}:{account}:security-group/{sg} because no \
                 identity-based policy allows the ec2:{name} action.",
                w.actors[who].arn
            ),
        );
    }
    let p = proto.to_uppercase();
    match name {
        "CreateSecurityGroup" => (
            "Client.InvalidGroup.Duplicate",
            format!("The security group '{gname}' already exists for VPC '{}'", w.nets[usize::from(account != w.accounts[0])].vpc),
        ),
        "DeleteSecurityGroup" => ("Client.DependencyViolation", format!("resource {sg} has a dependent object")),
        n if n.starts_with("Revoke") => (
            "Client.InvalidPermission.NotFound",
            "The specified rule does not exist in this security group.".to_string(),
        ),
        _ => (
            "Client.InvalidPermission.Duplicate",
            format!("the specified rule \"peer: {cidr}, {p}, from port: {from}, to port: {to}, ALLOW\" already exists"),
        ),
    }
}

/// Emits `n` successful calls at the given times; ~5% are preceded by a failed attempt.
fn sg_burst(w: &mut World, rng: &mut Rng, sink: &mut Sink, who: usize, times: Vec<i64>, force_mix: bool) {
    for (i, t) in times.into_iter().enumerate() {
        let name = if force_mix && i < 3 {
            // Guarantees a spike mixes at least three distinct calls.
            ["CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"][i]
        } else {
            SECURITY_GROUP_EVENTS[rng.weighted(&SG_WEIGHTS)]
        };
        if rng.chance(0.05) {
            let ft = (t - rng.range(2, 40) as i64).max(t - t.rem_euclid(3600));
            let rec = sg_call(w, rng, who, ft, name, true);
            sink.push(ft, rec);
        }
        let rec = sg_call(w, rng, who, t, name, false);
        sink.push(t, rec);
    }
}

fn times_in(rng: &mut Rng, hs: i64, n: u64, lo: i64, hi: i64) -> Vec<i64> {
    let mut v: Vec<i64> = (0..n).map(|_| hs + lo + rng.below((hi - lo) as u64) as i64).collect();
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------
// S3 Batch Operations

fn create_job(w: &World, rng: &mut Rng, who: usize, t: i64, job_id: &str, ip: Option<&'static str>) -> J {
    let account = w.actors[who].account.clone();
    let account = account.as_str();
    let src = w.nets[usize::from(account != w.accounts[0])].buckets[1];
    let mut a = Api::new(who, t, "us-west-2", "s3.amazonaws.com", "CreateJob");
    a.read_only = false;
    a.ip = ip;
    a.user_agent = Some(
        "aws-cli/2.17.46 md/awscrt#0.21.2 ua/2.0 os/linux#6.8.0-45-generic md/arch#x86_64 lang/python#3.12.6 \
         md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#s3control.create-job"
            .to_string(),
    );
    a.req = obj! {
        "CreateJobRequest": obj! {
            "xmlns": "http://awss3control.amazonaws.com/doc/2018-08-20/",
            "ConfirmationRequired": "false",
            "Operation": obj! { "S3PutObjectCopy": obj! {
                "TargetResource": "arn:aws:s3:::xfer-bkp-7731",
                "CannedAccessControlList": "bucket-owner-full-control",
            } },
            "Report": obj! { "Enabled": "false" },
            "ClientRequestToken": rng.uuid(),
            "Manifest": obj! {
                "Spec": obj! { "Format": "S3BatchOperations_CSV_20180820", "Fields": obj! { "member": vec![J::from("Bucket"), J::from("Key")] } },
                "Location": obj! {
                    "ObjectArn": format!("arn:aws:s3:::{src}/manifests/{}.csv", rng.hex(8)),
                    "ETag": rng.hex(32),
                },
            },
            "Priority": "10",
            "RoleArn": format!("arn:aws:iam::{account}:role/batch-operations"),
        },
        "x-amz-account-id": account,
        "Host": format!("{account}.s3-control.us-west-2.amazonaws.com"),
    };
    a.resp = obj! { "CreateJobResult": obj! { "JobId": job_id } };
    a.additional = Some(obj! {
        "SignatureVersion": "SigV4",
        "CipherSuite": "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn": 1032i64,
        "AuthenticationMethod": "AuthHeader",
        "bytesTransferredOut": 186i64,
    });
    api_record(w, rng, a)
}

fn job_event(rng: &mut Rng, account: &str, t: i64, name: &str, job_id: &str, status: &str) -> J {
    obj! {
        "eventVersion": "1.09",
        "userIdentity": obj! { "accountId": account, "invokedBy": "s3.amazonaws.com" },
        "eventTime": fmt_time(t),
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-west-2",
        "sourceIPAddress": "s3.amazonaws.com",
        "userAgent": "s3.amazonaws.com",
        "requestParameters": J::Null,
        "responseElements": J::Null,
        "eventID": rng.uuid(),
        "readOnly": false,
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": account,
        "serviceEventDetails": obj! {
            "jobId": job_id,
            "jobArn": format!("arn:aws:s3:us-west-2:{account}:job/{job_id}"),
            "status": status,
            "jobEventId": rng.hex(32),
            "failureCodes": Vec::<J>::new(),
            "statusChangeReason": Vec::<J>::new(),
        },
        "eventCategory": "Management",
    }
}

/// CreateJob API call, then JobCreated seconds later, then Active and Complete updates.
fn batch_job(w: &World, rng: &mut Rng, sink: &mut Sink, who: usize, t: i64, ip: Option<&'static str>) {
    let account = w.actors[who].account.clone();
    let account = account.as_str();
    let job_id = rng.uuid();
    let rec = create_job(w, rng, who, t, &job_id, ip);
    sink.push(t, rec);
    let created = t + rng.range(2, 6) as i64;
    let rec = job_event(rng, account, created, "JobCreated", &job_id, "New");
    sink.push(created, rec);
    let active = created + rng.range(60, 240) as i64;
    let rec = job_event(rng, account, active, "JobStatusChanged", &job_id, "Active");
    sink.push(active, rec);
    let done = active + rng.range(8 * 60, 35 * 60) as i64;
    let rec = job_event(rng, account, done, "JobStatusChanged", &job_id, "Complete");
    sink.push(done, rec);
}

// ---------------------------------------------------------------------------
// One clock hour

/// For a call on a resource another account owns (its `resources[].accountId`), the record
/// CloudTrail delivers to that owner too: the same call with the owner's `recipientAccountId` and
/// an `eventID` of its own; both copies carry one `sharedEventID` ("CloudTrail record contents",
/// AWS CloudTrail User Guide). `None` for a call within one account.
fn delivered_to_owner(rec: &mut J, rng: &mut Rng) -> Option<J> {
    let J::Obj(fields) = rec else { return None };
    let text = |fields: &[(&str, J)], name: &str| match fields.iter().find(|(k, _)| *k == name) {
        Some((_, J::Str(s))) => Some(s.clone()),
        _ => None,
    };
    let recipient = text(fields, "recipientAccountId")?;
    let owner = match fields.iter().find(|(k, _)| *k == "resources") {
        Some((_, J::Arr(resources))) => resources.iter().find_map(|r| match r {
            J::Obj(r) => text(r, "accountId").filter(|a| *a != recipient),
            _ => None,
        })?,
        _ => return None,
    };
    let at = fields.iter().position(|(k, _)| *k == "recipientAccountId")? + 1;
    fields.insert(at, ("sharedEventID", rng.uuid().into()));
    let mut copy = fields.clone();
    for (k, v) in copy.iter_mut() {
        match *k {
            "recipientAccountId" => *v = owner.clone().into(),
            "eventID" => *v = rng.uuid().into(),
            _ => {}
        }
    }
    Some(J::Obj(copy))
}

fn gen_hour(w: &mut World, plan: &Plan, hs: i64, rng: &mut Rng, sink: &mut Sink) {
    let office = is_office(hs);
    let hod = hour_of_day(hs);

    // Morning console sign-ins, and the rare root login.
    if office && hod == 9 {
        for who in [ALICE, BOB, CAROL, DAVE] {
            if rng.chance(0.6) {
                let t = hs + rng.below(1500) as i64;
                let rec = console_login(w, rng, who, t);
                sink.push(t, rec);
            }
        }
    }
    if office {
        for who in [ROOT_A, ROOT_B] {
            if rng.chance(0.012) {
                let t = hs + rng.below(3300) as i64;
                let rec = console_login(w, rng, who, t);
                sink.push(t, rec);
                let t2 = t + rng.range(30, 200) as i64;
                let mut a = Api::new(who, t2, "us-east-1", "iam.amazonaws.com", "GetAccountSummary");
                a.read_only = true;
                let rec = api_record(w, rng, a);
                sink.push(t2, rec);
            }
        }
    }

    // Background API traffic.
    let n = if office { rng.range(18, 25) } else { rng.range(10, 14) };
    let weights: [u32; 6] = if office { [14, 14, 14, 16, 14, 28] } else { [1, 1, 1, 2, 1, 94] };
    for _ in 0..n {
        let who = rng.weighted(&weights);
        // CI runs in the first half of the hour; people whenever.
        let t = if who == CI { hs + rng.below(1800) as i64 } else { hs + rng.below(3600) as i64 };
        let mut rec = background(w, rng, who, t);
        let owner_copy = delivered_to_owner(&mut rec, rng);
        sink.push(t, rec);
        if let Some(copy) = owner_copy {
            sink.push(t, copy);
        }
    }

    // Security-group changes by the automation role: every hour, 2-4.
    if plan.ci_spike == Some(hs) {
        let times = times_in(rng, hs, CI_SPIKE, 0, 3540);
        sg_burst(w, rng, sink, CI, times, true);
    } else {
        let k = rng.range(2, 4);
        let times = times_in(rng, hs, k, 60, 1800);
        sg_burst(w, rng, sink, CI, times, false);
    }

    // Security-group changes by people: most office hours, rarely at weekends.
    for who in NET_ADMINS {
        if who == ALICE && plan.alice_spike == Some(hs) {
            let times = times_in(rng, hs, ALICE_SPIKE, 60, 3540);
            sg_burst(w, rng, sink, who, times, true);
            continue;
        }
        let k = if office && rng.chance(0.7) {
            rng.range(1, 6)
        } else if !is_weekday(hs) && (10..17).contains(&hod) && rng.chance(0.03) {
            rng.range(1, 2)
        } else {
            0
        };
        if k > 0 {
            let times = times_in(rng, hs, k, 60, 3540);
            sg_burst(w, rng, sink, who, times, false);
        }
    }

    // Planted S3 Batch Operations jobs.
    if plan.batch_a == Some(hs) {
        // Stolen keys used from an address bob never uses, at night.
        for (lo, hi) in [(240, 900), (1200, 2000), (2400, 3300)] {
            let t = hs + rng.range(lo, hi) as i64;
            batch_job(w, rng, sink, BOB, t, Some("185.220.101.34"));
        }
    }
    if plan.batch_b == Some(hs) {
        let t = hs + rng.range(300, 3000) as i64;
        batch_job(w, rng, sink, CAROL, t, None);
    }
}
