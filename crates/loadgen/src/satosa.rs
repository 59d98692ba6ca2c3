//! `satosa`: the same ACS measurement as `acs`, against SATOSA (scripts/compare-satosa.sh
//! starts it under gunicorn with its SAML2 backend and the bench frontend of
//! tests/peers/satosa, trusting the demo IdP).
//!
//! Each login is prepared as a browser would: `GET <start>` at SATOSA (the bench frontend
//! hands the login to the SAML2 backend, which answers with its signed AuthnRequest, a
//! redirect or an auto-posting form, and sets its state cookie), the demo IdP's page for that
//! request and its answer, a signed Response. Then the prepared Responses are posted to SATOSA's ACS with
//! their state cookies, closed loop, and only that phase is measured: the CPU time of SATOSA's
//! process tree (gunicorn, its worker, and the `xmlsec1` runs the worker reaps), per POST.
//! A POST succeeds when SATOSA answers 200 with the user's attributes (the bench frontend's
//! JSON); anything else is a failure, counted and printed. Before the measured POSTs, one more
//! prepared Response is altered after signing and posted: SATOSA must refuse it, or the run
//! stops (a SATOSA that skipped its signature checks would make the comparison meaningless).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::{Conn, IdpAnswer, form_action, form_input, idp_login, split_url};
use crate::stack::tree_cpu_time;
use crate::{Tally, machine_line, print_latency};

/// The state cookie SATOSA is configured with (tests/peers/satosa/proxy_conf.yaml).
const STATE_COOKIE: &str = "SATOSA_STATE";
/// What the bench frontend's answer must hold: the internal attribute that the fiscal number
/// of the IdP's user is mapped to, with a value.
const EXPECTED: &str = "\"fiscalnumber\": [\"";

/// Where SATOSA is and how to measure it.
pub(crate) struct SatosaOptions {
    /// `host:port` of SATOSA.
    pub(crate) host: String,
    /// The bench frontend's start path (`/<backend>/<frontend>/start`).
    pub(crate) start_path: String,
    /// The gunicorn master's process ID: CPU is counted over it and every process below it.
    pub(crate) pid: u32,
}

/// One prepared login: the ACS path, the state cookie and the form's two fields.
struct Login {
    acs_path: String,
    cookie: String,
    saml_response: String,
    relay_state: String,
}

impl Login {
    /// The ACS form body.
    fn body(&self) -> Bytes {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", &self.saml_response)
            .append_pair("RelayState", &self.relay_state)
            .finish()
            .into()
    }

    /// The same login with one signed byte changed in the Response (the user's given name,
    /// inside the signed Assertion): what SATOSA must refuse.
    fn tampered(&self) -> Result<Login, String> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let xml = b64
            .decode(&self.saml_response)
            .map_err(|e| format!("the IdP's SAMLResponse is not base64: {e}"))?;
        let xml = String::from_utf8(xml).map_err(|_| "the IdP's Response is not UTF-8")?;
        if !xml.contains(">Mario<") {
            return Err("the IdP's Response has no given name to change".into());
        }
        Ok(Login {
            acs_path: self.acs_path.clone(),
            cookie: self.cookie.clone(),
            saml_response: b64.encode(xml.replacen(">Mario<", ">Maria<", 1)),
            relay_state: self.relay_state.clone(),
        })
    }
}

/// Starts a login at SATOSA, has the demo IdP answer it, and returns what to post.
async fn prepare(
    satosa: &mut Conn,
    idp: &mut Option<(String, Conn)>,
    o: &SatosaOptions,
) -> Result<Login, String> {
    let start = satosa.send("GET", &o.start_path, &[], Bytes::new()).await?;
    let cookie = start
        .set_cookie(STATE_COOKIE)
        .ok_or_else(|| format!("SATOSA start {} set no state cookie", start.status))?;
    // HTTP-Redirect (a Location with the signed query) or HTTP-POST (a page whose form posts
    // the enveloped-signed AuthnRequest), as SATOSA's configuration prefers.
    let (method, url, form) = match start.status {
        302 | 303 => {
            let location = start.header("location").ok_or("no Location")?;
            ("GET", location.to_owned(), Bytes::new())
        }
        200 => {
            let html = start.text();
            let request = form_input(&html, "SAMLRequest").ok_or("no SAMLRequest form")?;
            let relay = form_input(&html, "RelayState").unwrap_or_default();
            let form: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("SAMLRequest", &request)
                .append_pair("RelayState", &relay)
                .finish();
            let action = form_action(&html).ok_or("no form action")?;
            ("POST", action, form.into())
        }
        other => return Err(format!("SATOSA start {other}: {}", start.text())),
    };
    let (idp_host, sso) = split_url(&url).ok_or("the IdP's URL is not http://")?;
    if idp.as_ref().is_none_or(|(h, _)| h != idp_host) {
        *idp = Some((idp_host.to_owned(), Conn::new(idp_host)));
    }
    let (_, idp) = idp.as_mut().ok_or("no IdP connection")?;
    let IdpAnswer {
        saml_response,
        relay_state,
        action,
    } = idp_login(idp, method, sso, form).await?;
    let (acs_host, acs_path) = split_url(&action).ok_or("ACS is not http://")?;
    if acs_host != o.host {
        return Err(format!("IdP posts to {action}, not to SATOSA"));
    }
    Ok(Login {
        acs_path: acs_path.to_owned(),
        cookie: format!("{STATE_COOKIE}={cookie}"),
        saml_response,
        relay_state,
    })
}

/// Posts one prepared Response; success is 200 with the mapped attributes.
async fn post(satosa: &mut Conn, login: &Login) -> Result<(), String> {
    let r = satosa
        .send(
            "POST",
            &login.acs_path,
            &[("cookie", &login.cookie)],
            login.body(),
        )
        .await?;
    if r.status != 200 {
        // SATOSA's error text carries IDs: keep the first line's start so failures group.
        let text = r.text();
        let first = text.lines().next().unwrap_or_default();
        return Err(format!(
            "ACS {}: {}",
            r.status,
            first.chars().take(120).collect::<String>()
        ));
    }
    if !r.text().contains(EXPECTED) {
        return Err("ACS 200 without the user's fiscal number".into());
    }
    Ok(())
}

/// Prepares `n` logins with `p` workers.
async fn prepare_all(o: &Arc<SatosaOptions>, n: usize, p: usize) -> Result<Vec<Login>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..p.max(1) {
        let (o, next) = (o.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut satosa = Conn::one_shot(&o.host);
            let mut idp = None;
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                out.push(
                    prepare(&mut satosa, &mut idp, &o)
                        .await
                        .map_err(|e| format!("prepare: {e}"))?,
                );
            }
            Ok::<_, String>(out)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for h in handles {
        all.extend(h.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// Posts every prepared login over `c` connections, closed loop.
async fn drive(o: &Arc<SatosaOptions>, logins: Arc<Vec<Login>>, c: usize) -> Tally {
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..c.max(1) {
        let (o, next, logins) = (o.clone(), next.clone(), logins.clone());
        handles.push(tokio::spawn(async move {
            let mut satosa = Conn::one_shot(&o.host);
            let mut mine = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(login) = logins.get(i) else { break };
                let begin = Instant::now();
                match post(&mut satosa, login).await {
                    Ok(()) => mine.latency_us.push(begin.elapsed().as_micros() as u64),
                    Err(e) => mine.error(e),
                }
            }
            mine
        }));
    }
    Tally::gather(handles).await
}

/// The whole `satosa` mode; `Ok(true)` when every POST succeeded.
pub(crate) async fn run(
    o: SatosaOptions,
    n: usize,
    concurrency: usize,
    prepare_concurrency: usize,
) -> Result<bool, String> {
    let o = Arc::new(o);
    println!("{}", machine_line());
    println!(
        "mode satosa, SATOSA at {} (process tree of pid {}), start {}",
        o.host, o.pid, o.start_path
    );
    tree_cpu_time(o.pid).ok_or_else(|| format!("no process {}", o.pid))?;
    let t0 = Instant::now();
    // One more than measured: its Response, altered, must be refused before the run counts.
    let mut logins = prepare_all(&o, n + 1, prepare_concurrency).await?;
    let prep = t0.elapsed();
    println!(
        "prepared {} SATOSA logins (AuthnRequest, state cookie, signed Response; one to alter) in {:.1} s ({:.0}/s)",
        logins.len(),
        prep.as_secs_f64(),
        logins.len() as f64 / prep.as_secs_f64()
    );
    if prep > Duration::from_secs(120) {
        println!("warning: preparation took long; Responses expire 5 min after signing");
    }
    let probe = logins.pop().ok_or("nothing prepared")?.tampered()?;
    match post(&mut Conn::one_shot(&o.host), &probe).await {
        Ok(()) => return Err("SATOSA accepted a Response altered after signing".into()),
        Err(e) => println!("an altered Response is refused ({e})"),
    }
    let cpu0 = tree_cpu_time(o.pid);
    let t0 = Instant::now();
    let mut tally = drive(&o, Arc::new(logins), concurrency).await;
    let wall = t0.elapsed();
    let cpu = tree_cpu_time(o.pid)
        .zip(cpu0)
        .map(|(a, b)| a.since(b))
        .ok_or("SATOSA's process is gone")?;
    let errors: u64 = tally.errors.values().sum();
    let ok = tally.latency_us.len() as u64;
    println!(
        "SATOSA ACS posts: {ok} ok, {errors} failed in {:.2} s (closed loop, {concurrency} connections): {:.1} posts/s",
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64()
    );
    print_latency("latency", &mut tally.latency_us);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / ok.max(1) as f64;
    println!(
        "satosa CPU: {:.2} s user+system over the run (gunicorn, its workers and what they ran), {:.0} µs per post, {:.0} % of one core",
        cpu.total().as_secs_f64(),
        per(cpu.total()),
        cpu.total().as_secs_f64() * 100.0 / wall.as_secs_f64()
    );
    println!(
        "satosa CPU split: {:.0} µs per post in its own processes, {:.0} µs in the programs they ran and reaped (pysaml2's xmlsec1)",
        per(cpu.own),
        per(cpu.reaped)
    );
    for (e, n) in &tally.errors {
        println!("error x{n}: {e}");
    }
    Ok(errors == 0 && ok as usize == n)
}
