//! `/api/v2/voice/…`: the tenant's voice configuration, personas and wake words.

use crate::blackbox::support::{
    audit_count, expect_audited, expect_hidden, expect_invalid, id_of, ids, member, read, request_id, total,
};
use crate::blackbox::{CheckResult, Framework, Target, field};
use avb_core::Role;
use serde_json::{Value, json};

const CONFIG: &str = "/api/v2/voice/config";
const PERSONAS: &str = "/api/v2/voice/personas";
const WAKE_WORDS: &str = "/api/v2/voice/wake-words";

/// `method path` with `token`, a request id and a JSON body, expecting `status`: the body.
async fn write(
    t: &Target,
    token: &str,
    method: &str,
    path: &str,
    body: &Value,
    rid: &str,
    status: u16,
) -> Result<Value, String> {
    let reply = t
        .call(method, path)
        .bearer(token)
        .header("x-request-id", rid)
        .json(body)
        .send()
        .await?;
    reply.expect(status)?;
    Ok(reply.json())
}

/// The configuration (defaults, then saved and changed; audited as `settings_change`; a stale version is
/// `conflict`), a persona and a wake word each through create → get → list → patch → delete, every write audited.
pub async fn voice_round_trip(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let defaults = read(&s, token, CONFIG).await?;
    ensure!(
        field(&defaults, "/version") == 0 && field(&defaults, "/tenant_id") == s.tenant_id.as_str(),
        "unsaved defaults: {defaults}"
    );
    let rid = request_id("voice-config");
    let saved = write(
        &s,
        token,
        "PATCH",
        CONFIG,
        &json!({ "tts_speed": 1.5, "language": "de", "instructions": "Be brief." }),
        &rid,
        200,
    )
    .await?;
    let config_id = id_of(&saved)?;
    ensure!(
        field(&saved, "/tts_speed") == 1.5
            && field(&saved, "/language") == "de"
            && field(&saved, "/instructions") == "Be brief."
            && field(&saved, "/version") == 1
            && field(&saved, "/stt_model") == field(&defaults, "/stt_model"),
        "saved: {saved}"
    );
    ensure!(
        read(&s, token, CONFIG).await? == saved,
        "a re-read shows the saved configuration"
    );
    expect_audited(&s, token, "settings_change", "voice_config", &config_id, &rid).await?;
    let rid = request_id("voice-config");
    let changed = write(
        &s,
        token,
        "PATCH",
        CONFIG,
        &json!({ "temperature": 0.2, "version": 1 }),
        &rid,
        200,
    )
    .await?;
    ensure!(
        field(&changed, "/version") == 2 && field(&changed, "/language") == "de",
        "changed: {changed}"
    );
    expect_audited(&s, token, "settings_change", "voice_config", &config_id, &rid).await?;
    s.patch(CONFIG)
        .bearer(token)
        .json(&json!({ "temperature": 0.9, "version": 1 }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    ensure!(
        read(&s, token, CONFIG).await? == changed,
        "a stale patch changed nothing"
    );

    // Persona.
    let rid = request_id("persona");
    let persona = write(
        &s,
        token,
        "POST",
        PERSONAS,
        &json!({ "name": "Concierge", "instructions": "Greet guests.", "temperature": 0.5 }),
        &rid,
        201,
    )
    .await?;
    let persona_id = id_of(&persona)?;
    ensure!(
        field(&persona, "/name") == "Concierge"
            && field(&persona, "/language") == "en"
            && field(&persona, "/is_active") == true,
        "created persona: {persona}"
    );
    expect_audited(&s, token, "create", "persona", &persona_id, &rid).await?;
    let path = format!("{PERSONAS}/{persona_id}");
    ensure!(read(&s, token, &path).await? == persona, "get persona");
    let listed = read(&s, token, &format!("{PERSONAS}?name=concierge")).await?;
    ensure!(ids(&listed) == [persona_id.clone()], "list by name: {listed}");
    let rid = request_id("persona");
    let patched = write(
        &s,
        token,
        "PATCH",
        &path,
        &json!({ "is_active": false }),
        &rid,
        200,
    )
    .await?;
    ensure!(
        field(&patched, "/is_active") == false,
        "patched persona: {patched}"
    );
    expect_audited(&s, token, "update", "persona", &persona_id, &rid).await?;
    let inactive = read(&s, token, &format!("{PERSONAS}?is_active=false")).await?;
    ensure!(
        ids(&inactive) == [persona_id.clone()],
        "is_active filter: {inactive}"
    );
    let rid = request_id("persona");
    let deleted = s
        .delete(&path)
        .bearer(token)
        .header("x-request-id", &rid)
        .send()
        .await?;
    deleted.expect(204)?;
    expect_audited(&s, token, "delete", "persona", &persona_id, &rid).await?;
    s.get(&path)
        .bearer(token)
        .send()
        .await?
        .expect_error(404, "not_found")?;

    // Wake word.
    let rid = request_id("wake");
    let word = write(
        &s,
        token,
        "POST",
        WAKE_WORDS,
        &json!({ "phrase": "  Hey   Box ", "sensitivity": 0.7 }),
        &rid,
        201,
    )
    .await?;
    let word_id = id_of(&word)?;
    ensure!(
        field(&word, "/phrase") == "Hey Box" && field(&word, "/is_active") == true,
        "created wake word (whitespace collapsed): {word}"
    );
    expect_audited(&s, token, "create", "wake_word", &word_id, &rid).await?;
    let path = format!("{WAKE_WORDS}/{word_id}");
    ensure!(read(&s, token, &path).await? == word, "get wake word");
    ensure!(total(&s, token, WAKE_WORDS).await? == 1, "listed");
    let rid = request_id("wake");
    let patched = write(
        &s,
        token,
        "PATCH",
        &path,
        &json!({ "phrase": "Okay Box" }),
        &rid,
        200,
    )
    .await?;
    ensure!(
        field(&patched, "/phrase") == "Okay Box",
        "patched wake word: {patched}"
    );
    expect_audited(&s, token, "update", "wake_word", &word_id, &rid).await?;
    let rid = request_id("wake");
    let deleted = s
        .delete(&path)
        .bearer(token)
        .header("x-request-id", &rid)
        .send()
        .await?;
    deleted.expect(204)?;
    expect_audited(&s, token, "delete", "wake_word", &word_id, &rid).await?;
    ensure!(total(&s, token, WAKE_WORDS).await? == 0, "deleted");
    Ok(())
}

/// Out-of-range configuration, personas and wake words are `validation_error` naming the field; duplicates are
/// `conflict`; nothing changes and nothing is audited.
pub async fn invalid_voice_changes_change_nothing(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let before = read(&s, token, CONFIG).await?;
    for (body, bad) in [
        (json!({ "temperature": 3.0 }), "temperature"),
        (json!({ "tts_speed": 0.1 }), "tts_speed"),
        (json!({ "silence_duration_ms": 50 }), "silence_duration_ms"),
        (json!({ "language": "x" }), "language"),
        (json!({ "stt_model": "" }), "stt_model"),
    ] {
        expect_invalid(&s.patch(CONFIG).bearer(token).json(&body).send().await?, bad)?;
    }
    let after = read(&s, token, CONFIG).await?;
    ensure!(
        field(&after, "/version") == 0 && field(&after, "/temperature") == field(&before, "/temperature"),
        "refused patches saved nothing: {before} → {after}"
    );
    ensure!(
        audit_count(&s, token, "voice_config").await? == 0,
        "nothing audited"
    );

    for (body, bad) in [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "Hot", "temperature": 2.5 }), "temperature"),
        (json!({ "name": "Long", "voice": "v".repeat(51) }), "voice"),
    ] {
        expect_invalid(&s.post(PERSONAS).bearer(token).json(&body).send().await?, bad)?;
    }
    let persona = s
        .post(PERSONAS)
        .bearer(token)
        .json(&json!({ "name": "Unique" }))
        .send()
        .await?;
    persona.expect(201)?;
    let persona = persona.json();
    let path = format!("{PERSONAS}/{}", id_of(&persona)?);
    s.post(PERSONAS)
        .bearer(token)
        .json(&json!({ "name": "UNIQUE" }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    expect_invalid(
        &s.patch(&path)
            .bearer(token)
            .json(&json!({ "description": "kept?", "temperature": -1 }))
            .send()
            .await?,
        "temperature",
    )?;
    ensure!(
        read(&s, token, &path).await? == persona,
        "a refused patch changed nothing"
    );
    ensure!(total(&s, token, PERSONAS).await? == 1, "one persona");
    let other = s
        .post(PERSONAS)
        .bearer(token)
        .json(&json!({ "name": "Second" }))
        .send()
        .await?;
    other.expect(201)?;
    let other = other.json();
    let other_path = format!("{PERSONAS}/{}", id_of(&other)?);
    for body in [
        json!({ "name": "unique" }),
        json!({ "description": "stale", "version": 99 }),
    ] {
        s.patch(&other_path)
            .bearer(token)
            .json(&body)
            .send()
            .await?
            .expect_error(409, "conflict")?;
    }
    ensure!(
        read(&s, token, &other_path).await? == other,
        "a refused rename changed nothing"
    );

    for (body, bad) in [
        (json!({ "phrase": "x" }), "phrase"),
        (json!({ "phrase": "hey b0x!" }), "phrase"),
        (json!({ "phrase": "hey box", "sensitivity": 1.5 }), "sensitivity"),
    ] {
        expect_invalid(&s.post(WAKE_WORDS).bearer(token).json(&body).send().await?, bad)?;
    }
    let word = s
        .post(WAKE_WORDS)
        .bearer(token)
        .json(&json!({ "phrase": "hey box" }))
        .send()
        .await?;
    word.expect(201)?;
    let word = word.json();
    s.post(WAKE_WORDS)
        .bearer(token)
        .json(&json!({ "phrase": "HEY BOX" }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    let word_path = format!("{WAKE_WORDS}/{}", id_of(&word)?);
    expect_invalid(
        &s.patch(&word_path)
            .bearer(token)
            .json(&json!({ "sensitivity": 2 }))
            .send()
            .await?,
        "sensitivity",
    )?;
    ensure!(
        read(&s, token, &word_path).await? == word,
        "a refused patch changed nothing"
    );
    ensure!(total(&s, token, WAKE_WORDS).await? == 1, "one wake word");
    let second = s
        .post(WAKE_WORDS)
        .bearer(token)
        .json(&json!({ "phrase": "hey other" }))
        .send()
        .await?;
    second.expect(201)?;
    let second = second.json();
    let second_path = format!("{WAKE_WORDS}/{}", id_of(&second)?);
    s.patch(&second_path)
        .bearer(token)
        .json(&json!({ "phrase": "Hey  BOX" }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    ensure!(
        read(&s, token, &second_path).await? == second,
        "a refused rename changed nothing"
    );
    Ok(())
}

/// A viewer reads but cannot change the configuration, personas or wake words; a developer edits but cannot
/// delete another's persona; another tenant's admin gets `not_found` with no data and keeps its own defaults.
pub async fn voice_is_guarded_and_tenant_scoped(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let config = s
        .patch(CONFIG)
        .bearer(token)
        .json(&json!({ "instructions": "Demo secret instructions" }))
        .send()
        .await?;
    config.expect(200)?;
    let persona = s
        .post(PERSONAS)
        .bearer(token)
        .json(&json!({ "name": "Admin's persona", "instructions": "persona-secret" }))
        .send()
        .await?;
    persona.expect(201)?;
    let persona_id = id_of(&persona.json())?;
    let persona_path = format!("{PERSONAS}/{persona_id}");
    let word = s
        .post(WAKE_WORDS)
        .bearer(token)
        .json(&json!({ "phrase": "hello demo" }))
        .send()
        .await?;
    word.expect(201)?;
    let word_id = id_of(&word.json())?;
    let word_path = format!("{WAKE_WORDS}/{word_id}");

    let (_, viewer) = member(&s, "viewer@demo.local", &[Role::Viewer]).await?;
    let (_, developer) = member(&s, "developer@demo.local", &[Role::Developer]).await?;
    read(&s, &viewer, CONFIG).await?;
    read(&s, &viewer, &persona_path).await?;
    read(&s, &viewer, &word_path).await?;
    ensure!(
        total(&s, &viewer, PERSONAS).await? == 1,
        "a viewer lists personas"
    );
    for (method, path, body) in [
        ("PATCH", CONFIG.to_owned(), json!({ "temperature": 1.0 })),
        ("POST", PERSONAS.to_owned(), json!({ "name": "Viewer's" })),
        ("PATCH", persona_path.clone(), json!({ "name": "Renamed" })),
        ("DELETE", persona_path.clone(), json!(null)),
        ("POST", WAKE_WORDS.to_owned(), json!({ "phrase": "viewer word" })),
        ("PATCH", word_path.clone(), json!({ "is_active": false })),
        ("DELETE", word_path.clone(), json!(null)),
    ] {
        let mut call = s.call(method, &path).bearer(&viewer);
        if !body.is_null() {
            call = call.json(&body);
        }
        call.send().await?.expect_error(403, "permission_denied")?;
    }
    s.patch(&persona_path)
        .bearer(&developer)
        .json(&json!({ "description": "edited by a developer" }))
        .send()
        .await?
        .expect(200)?;
    s.delete(&persona_path)
        .bearer(&developer)
        .send()
        .await?
        .expect_error(403, "permission_denied")?;

    let intruder = &s.other.admin_token;
    for (method, path) in [
        ("GET", persona_path.clone()),
        ("PATCH", persona_path.clone()),
        ("DELETE", persona_path.clone()),
        ("GET", word_path.clone()),
        ("PATCH", word_path.clone()),
        ("DELETE", word_path.clone()),
    ] {
        let mut call = s.call(method, &path).bearer(intruder);
        if method == "PATCH" {
            call = call.json(&json!({ "is_active": false }));
        }
        expect_hidden(
            &call.send().await?,
            &["Admin's persona", "persona-secret", "hello demo"],
        )?;
    }
    let theirs = read(&s, intruder, CONFIG).await?;
    ensure!(
        field(&theirs, "/tenant_id") == s.other.tenant_id.as_str()
            && field(&theirs, "/version") == 0
            && !theirs.to_string().contains("Demo secret"),
        "the other tenant keeps its own defaults: {theirs}"
    );
    ensure!(
        total(&s, intruder, PERSONAS).await? == 0,
        "no demo personas listed"
    );
    ensure!(
        total(&s, intruder, WAKE_WORDS).await? == 0,
        "no demo wake words listed"
    );
    let persona = read(&s, token, &persona_path).await?;
    ensure!(
        field(&persona, "/name") == "Admin's persona" && field(&persona, "/is_active") == true,
        "refused calls changed nothing: {persona}"
    );
    ensure!(
        total(&s, token, WAKE_WORDS).await? == 1,
        "the wake word is still there"
    );
    Ok(())
}
