//! One conformance suite for the metadata seam: the same calls, with the same expected answers,
//! on SQLite and on PostgreSQL (inside tests/pg.sh, with `--features postgres`). The HTTP suite
//! runs on both as well; this one pins the query modules' own promises (one-shot spends, the
//! returned sequence numbers, the sums, the job queue) where a dialect difference would show.

use super::sql::{self, Conn};
use super::{captions, jobs, publications, tokens, uploads, videos, webhooks, Db};
use crate::args;

fn video(id: &str, now: i64) -> videos::VideoRow {
    videos::VideoRow {
        id: id.into(),
        title: Some("A talk".into()),
        file_name: "talk.mp4".into(),
        source: "api".into(),
        width: None,
        height: None,
        duration: Some(1.5),
        status: videos::VideoStatus::Pending,
        object_name: None,
        size: None,
        content_type: None,
        sha256: None,
        password_hash: None,
        embed_settings: None,
        created_at: now,
        updated_at: now,
        seq: 0,
        media: None,
        captions: None,
        derived: None,
        object_key: None,
    }
}

/// An upload URL's row (of video `vid_a`, token `tok_a`): sized when `size` is given.
pub(super) fn upload(id: &str, size: Option<u64>, expires_at: i64) -> uploads::UploadRow {
    uploads::UploadRow {
        id: id.into(),
        video_id: "vid_a".into(),
        file_name: "talk.mp4".into(),
        content_type: "video/mp4".into(),
        byte_limit: size.unwrap_or(1 << 40),
        exact_size: size.is_some(),
        token_id: "tok_a".into(),
        created_at: 0,
        expires_at,
        completed_at: None,
        session: None,
    }
}

fn run(c: &Conn) -> sql::Result<()> {
    // Tokens: stored, found by hash (bytes), revoked once.
    let hash = [7u8; 32];
    let t = tokens::TokenRow {
        id: "tok_a".into(),
        name: "conformance".into(),
        scopes: crate::domain::tokens::Scope::ALL.to_vec(),
        created_at: 1,
        expires_at: Some(i64::MAX / 2),
        last_used_at: None,
        revoked_at: None,
    };
    tokens::insert(c, &t, &hash)?;
    let found = tokens::find_by_hash(c, &hash)?.expect("found by its hash");
    assert_eq!(found.scopes, t.scopes);
    assert!(tokens::find_by_hash(c, &[8u8; 32])?.is_none());
    assert!(tokens::revoke(c, "tok_a", 5)?);
    assert!(!tokens::revoke(c, "tok_a", 6)?, "revoked twice");
    assert_eq!(tokens::get(c, "tok_a")?.unwrap().revoked_at, Some(5));

    // Videos: a taken id is refused, sequence numbers rise, pages go newest first.
    let first = videos::insert(c, &video("vid_a", 10))?.expect("a new id");
    assert_eq!(videos::insert(c, &video("vid_a", 11))?, None, "a taken id");
    let second = videos::insert(c, &video("vid_b", 12))?.expect("a new id");
    assert!(second > first);
    let page: Vec<String> = videos::page(c, None, 10)?
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(page, ["vid_b", "vid_a"]);
    assert!(videos::exists(c, "vid_a")?);
    videos::mark_ready(
        c,
        "vid_a",
        &videos::Stored {
            object_name: "talk.mp4",
            size: 1 << 33,
            content_type: "video/mp4",
            sha256: "ab",
            media: "{}",
            duration: Some(9.0),
            width: Some(640.0),
            height: None,
            object_key: Some("vid_a/composite/put-x/talk.mp4"),
        },
        13,
    )?;
    let v = videos::get(c, "vid_a")?.unwrap();
    assert_eq!(v.status, videos::VideoStatus::Ready);
    assert_eq!(v.size, Some(1 << 33), "sizes past 4 GiB survive");
    assert_eq!(v.duration, Some(1.5), "the client's duration is kept");
    assert_eq!(v.width, Some(640.0));
    assert_eq!(videos::count_not_in_bucket(c)?, 0);

    // Upload URLs: one spend; the open declared bytes sum; signed_until only rises.
    uploads::insert(c, &upload("up_a", Some(100), 2_000))?;
    uploads::insert(c, &upload("up_b", Some(20), 3_000))?;
    assert!(uploads::spend(c, &upload("up_lazy", None, 2_000), 500)?);
    assert!(!uploads::spend(c, &upload("up_lazy", None, 2_000), 600)?);
    assert_eq!(uploads::declared_open_bytes(c, 1_000)?, 120);
    assert_eq!(uploads::raise_signed_until(c, 50)?, 50);
    assert_eq!(uploads::raise_signed_until(c, 40)?, 50);
    let s = uploads::Session {
        offset: 0,
        length: Some(1 << 34),
        protocol: "tus".into(),
        metadata: None,
        until: 9_000,
        stored: Some("{\"parts\":[]}".into()),
    };
    assert!(uploads::start_session(c, "up_a", &s)?);
    assert!(
        !uploads::start_session(c, "up_a", &s)?,
        "one session at a time"
    );
    assert_eq!(
        uploads::session_stores_of(c, "vid_a")?,
        vec![("up_a".to_string(), "{\"parts\":[]}".to_string())]
    );
    assert!(uploads::advance_session(c, "up_a", 0, 10, None, None)?);
    assert!(
        !uploads::advance_session(c, "up_a", 0, 20, None, Some("{}"))?,
        "a stale offset"
    );
    let session = uploads::get(c, "up_a")?.unwrap().session.unwrap();
    assert_eq!(session.length, Some(1 << 34));
    assert_eq!(session.stored.as_deref(), Some("{\"parts\":[]}"));
    assert!(uploads::advance_session(
        c,
        "up_a",
        10,
        30,
        None,
        Some("{\"parts\":[1]}")
    )?);
    let session = uploads::get(c, "up_a")?.unwrap().session.unwrap();
    assert_eq!(
        (session.offset, session.stored.as_deref()),
        (30, Some("{\"parts\":[1]}"))
    );

    // Captions: put twice is one track; the video lists it.
    let track = captions::CaptionTrack {
        lang: "en".into(),
        label: "English".into(),
    };
    captions::put(c, "vid_a", &track, "WEBVTT\n", 20)?;
    captions::put(c, "vid_a", &track, "WEBVTT\n\n1\n", 21)?;
    assert_eq!(captions::get(c, "vid_a", "en")?.unwrap().1, 21);
    assert!(videos::get(c, "vid_a")?.unwrap().captions.is_some());

    // Jobs: queued once per kind, claimed once, progress and failure recorded.
    jobs::enqueue(c, "vid_a", jobs::POSTER, "ab", 30)?;
    jobs::enqueue(c, "vid_a", jobs::POSTER, "ab", 31)?;
    assert_eq!(jobs::next_due(c)?, Some(31));
    let job = jobs::claim(c, 40)?.expect("a due job");
    assert!(jobs::claim(c, 40)?.is_none(), "claimed twice");
    assert!(jobs::report(c, &job, 0.5, 41)?);
    jobs::failed(c, &job, "no ffmpeg", Some(100), 42)?;
    assert_eq!(jobs::requeue_running(c, 43)?, 0);
    assert_eq!(jobs::next_due(c)?, Some(100));

    // Webhooks: a URL once; events matched by word; deliveries in order.
    let hook = webhooks::HookRow {
        id: "whk_a".into(),
        url: "http://127.0.0.1:9/hook".into(),
        events: "video.ready upload.failed".into(),
        created_at: 50,
    };
    assert!(webhooks::insert_hook(c, &hook, "whsec_x")?);
    assert!(!webhooks::insert_hook(c, &hook, "whsec_y")?, "a URL twice");
    assert_eq!(
        webhooks::urls_for(c, "video.ready")?,
        std::slice::from_ref(&hook.url)
    );
    assert!(
        webhooks::urls_for(c, "video")?.is_empty(),
        "a word, not a prefix"
    );
    webhooks::enqueue(
        c,
        std::slice::from_ref(&hook.url),
        "evt_1",
        "video.ready",
        "{}",
        60,
    )?;
    webhooks::enqueue(
        c,
        std::slice::from_ref(&hook.url),
        "evt_2",
        "video.ready",
        "{}",
        60,
    )?;
    let due = webhooks::due(c, 60)?;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event_id, "evt_1");
    webhooks::attempted(c, due[0].id, "delivered", Some(200), None, 60, 61)?;
    assert_eq!(webhooks::due(c, 61)?[0].event_id, "evt_2");
    assert!(webhooks::delete_hook(c, "whk_a", 62)?);

    // Publications come back in the order they were made.
    for name in ["p2", "p1", "p3"] {
        publications::insert(
            c,
            &publications::Publication {
                temp_name: name.into(),
                video_id: "vid_a".into(),
                object_name: "talk.mp4".into(),
                replaces: None,
                replaced_key: None,
            },
        )?;
    }
    let order: Vec<String> = publications::all(c)?
        .into_iter()
        .map(|p| p.temp_name)
        .collect();
    assert_eq!(order, ["p2", "p1", "p3"]);

    // Deletion takes the video's rows with it.
    assert!(videos::begin_delete(c, "vid_a", 70)?);
    videos::finish_delete(c, "vid_a")?;
    assert!(videos::get(c, "vid_a")?.is_none());
    let left: i64 = c.row(
        "SELECT COUNT(*) FROM uploads WHERE video_id = ?1",
        args!["vid_a"],
        |r| r.get(0),
    )?;
    assert_eq!(left, 0);
    Ok(())
}

/// The suite, inside one change (as the server makes them), then a rolled-back change.
fn conform(db: &Db) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        db.write(|c| Ok::<_, crate::error::ApiError>(run(c)?))
            .await
            .unwrap();
        let refused = db
            .write(|c| {
                tokens::revoke(c, "tok_none", 1)?;
                videos::insert(c, &video("vid_rolled_back", 1))?;
                Err::<(), _>(crate::error::ApiError::Conflict("refused".into()))
            })
            .await;
        assert!(refused.is_err());
        let kept = db
            .read(|c| videos::exists(c, "vid_rolled_back").map_err(crate::error::ApiError::from))
            .await
            .unwrap();
        assert!(!kept, "a refused change was kept");
    });
}

#[test]
fn the_queries_conform_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    conform(&Db::open(&dir.path().join("flare.db")).unwrap());
}

#[cfg(feature = "postgres")]
#[test]
fn the_queries_conform_on_postgresql() {
    let base = std::env::var("TEST_DATABASE_URL")
        .expect("run the postgres feature's tests inside tests/pg.sh (a PostgreSQL cluster)");
    let name = format!("conformance_{}", std::process::id());
    // Made through the server's own database, not by running createdb: a child process here
    // would hold this test binary's open files (a data folder's lock) while it starts.
    sql::PgConn::connect(&format!("{base}postgres"))
        .unwrap()
        .batch(&format!("CREATE DATABASE {name}"))
        .unwrap();
    conform(&Db::open_url(&format!("{base}{name}")).unwrap());
}
