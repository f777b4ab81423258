//! Write rules are decided inside the commit (issue 8, item 1): for each rule, 16 writers race
//! for one key over many rounds, and exactly one may win each round. The winner's bytes are
//! what GET returns; the losers leave no data file, sidecar or index row.

mod common;
use common::*;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::future::join_all;
use md5::Digest as _;
use reqwest::Method;

const WRITERS: usize = 16;
const ROUNDS: usize = 6;

/// The body writer `w` sends in round `r`: distinct per writer, so GET names the winner.
fn body(r: usize, w: usize) -> Vec<u8> {
    format!("round {r} writer {w} ").repeat(20).into_bytes()
}

/// The outcome of one writer: Ok(writer) or the (status, code) it was refused with.
type Outcome = Result<usize, (u16, String)>;

/// Checks one round: exactly one winner, every loser refused with one of `codes`, and GET
/// returns the winner's body. Returns the winner.
async fn one_winner(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    outcomes: &[Outcome],
    codes: &[(u16, &str)],
    expect: impl Fn(usize) -> Vec<u8>,
) -> usize {
    let winners: Vec<usize> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "{bucket}/{key}: winners {winners:?}: {outcomes:?}"
    );
    for o in outcomes {
        if let Err((status, code)) = o {
            assert!(
                codes.iter().any(|(s, c)| s == status && c == code),
                "{bucket}/{key}: a loser got {status} {code}, expected one of {codes:?}"
            );
        }
    }
    assert_eq!(
        get(c, bucket, key).await,
        expect(winners[0]),
        "{bucket}/{key}"
    );
    winners[0]
}

/// No loser's file or sidecar is left, no temp file, and `index verify` is clean.
fn assert_clean(srv: &Server, bucket: &str, objects: usize) {
    let on_disk = srv.objects_on_disk(bucket);
    assert_eq!(
        on_disk.len(),
        objects,
        "{bucket}: objects on disk: {:?}",
        on_disk
            .iter()
            .map(|o| o.str_field("key"))
            .collect::<Vec<_>>()
    );
    srv.assert_no_temp_files(bucket);
    let (ok, report, err) = srv.index_cmd("verify");
    assert!(ok, "index verify: {report} {err}");
}

fn sdk_outcome<T, E>(
    w: usize,
    r: Result<
        T,
        aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
) -> Outcome
where
    T: std::fmt::Debug,
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match r {
        Ok(_) => Ok(w),
        Err(e) => {
            let f = sdk_err::<T, E>(Err(e));
            Err((f.status, f.code))
        }
    }
}

/// PUTs from every writer at once, with `cond` applied to each request.
async fn race_puts(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    r: usize,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Vec<Outcome> {
    join_all((0..WRITERS).map(|w| {
        let mut req = c
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body(r, w)));
        if let Some(m) = if_match {
            req = req.if_match(m);
        }
        if let Some(n) = if_none_match {
            req = req.if_none_match(n);
        }
        async move { sdk_outcome(w, req.send().await) }
    }))
    .await
}

storage_test!(rw_allows_one_writer_per_new_key, |srv| async move {
    let (ok, _, err) = srv.cli(&["element", "create", "ledger", "--mode", "rw"]);
    assert!(ok, "create rw element: {err}");
    let c = srv.client();
    for r in 0..ROUNDS {
        let key = format!("doc-{r}");
        let outcomes = race_puts(&c, "ledger", &key, r, None, None).await;
        one_winner(
            &c,
            "ledger",
            &key,
            &outcomes,
            &[(403, "AccessDenied")],
            |w| body(r, w),
        )
        .await;
    }
    assert_clean(&srv, "ledger", ROUNDS);
});

storage_test!(if_none_match_star_has_one_winner, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "inm").await;
    for r in 0..ROUNDS {
        let key = format!("doc-{r}");
        let outcomes = race_puts(&c, "inm", &key, r, None, Some("*")).await;
        one_winner(
            &c,
            "inm",
            &key,
            &outcomes,
            &[
                (412, "PreconditionFailed"),
                (409, "ConditionalRequestConflict"),
            ],
            |w| body(r, w),
        )
        .await;
    }
    assert_clean(&srv, "inm", ROUNDS);
});

storage_test!(if_match_on_one_etag_has_one_winner, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "ifmatch").await;
    let mut etag = put(&c, "ifmatch", "doc", "first version").await;
    for r in 0..ROUNDS {
        let outcomes = race_puts(&c, "ifmatch", "doc", r, Some(&etag), None).await;
        let w = one_winner(
            &c,
            "ifmatch",
            "doc",
            &outcomes,
            &[
                (412, "PreconditionFailed"),
                (409, "ConditionalRequestConflict"),
            ],
            |w| body(r, w),
        )
        .await;
        etag = format!("\"{}\"", hex::encode(md5::Md5::digest(body(r, w))));
        let head = c
            .head_object()
            .bucket("ifmatch")
            .key("doc")
            .send()
            .await
            .unwrap();
        assert_eq!(head.e_tag(), Some(etag.as_str()));
    }
    assert_clean(&srv, "ifmatch", 1);
});

storage_test!(copy_if_none_match_star_has_one_winner, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "copies").await;
    for w in 0..WRITERS {
        put(&c, "copies", &format!("src-{w}"), body(99, w)).await;
    }
    for r in 0..ROUNDS {
        let key = format!("dst-{r}");
        let outcomes: Vec<Outcome> = join_all((0..WRITERS).map(|w| {
            let req = srv
                .raw(Method::PUT, &format!("/copies/{key}"))
                .header("x-amz-copy-source", &format!("/copies/src-{w}"))
                .header("if-none-match", "*");
            async move {
                let resp = req.send().await;
                if resp.status == 200 {
                    Ok(w)
                } else {
                    Err((resp.status, resp.code()))
                }
            }
        }))
        .await;
        one_winner(
            &c,
            "copies",
            &key,
            &outcomes,
            &[
                (412, "PreconditionFailed"),
                (409, "ConditionalRequestConflict"),
            ],
            |w| body(99, w),
        )
        .await;
    }
    assert_clean(&srv, "copies", WRITERS + ROUNDS);
    // A destination that exists refuses before any byte is copied, and stays as it was.
    let before = get(&c, "copies", "dst-0").await;
    srv.raw(Method::PUT, "/copies/dst-0")
        .header("x-amz-copy-source", "/copies/src-1")
        .header("if-none-match", "*")
        .send()
        .await
        .assert_error(412, "PreconditionFailed");
    assert_eq!(get(&c, "copies", "dst-0").await, before);
});

storage_test!(
    complete_if_none_match_star_has_one_winner,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "mpu").await;
        for r in 0..ROUNDS {
            let key = format!("doc-{r}");
            let mut uploads = Vec::new();
            for w in 0..WRITERS {
                let id = c
                    .create_multipart_upload()
                    .bucket("mpu")
                    .key(&key)
                    .send()
                    .await
                    .unwrap()
                    .upload_id
                    .unwrap();
                let part = c
                    .upload_part()
                    .bucket("mpu")
                    .key(&key)
                    .upload_id(&id)
                    .part_number(1)
                    .body(ByteStream::from(body(r, w)))
                    .send()
                    .await
                    .unwrap();
                uploads.push((id, part.e_tag.unwrap()));
            }
            let outcomes = join_all(uploads.iter().enumerate().map(|(w, (id, etag))| {
                let req = c
                    .complete_multipart_upload()
                    .bucket("mpu")
                    .key(&key)
                    .upload_id(id)
                    .if_none_match("*")
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                            .build(),
                    );
                async move { sdk_outcome(w, req.send().await) }
            }))
            .await;
            one_winner(
                &c,
                "mpu",
                &key,
                &outcomes,
                &[
                    (412, "PreconditionFailed"),
                    (409, "ConditionalRequestConflict"),
                ],
                |w| body(r, w),
            )
            .await;
            // A refused completion leaves its upload as it was, so it can still be aborted.
            let open = c
                .list_multipart_uploads()
                .bucket("mpu")
                .send()
                .await
                .unwrap();
            assert_eq!(open.uploads().len(), WRITERS - 1);
            for (id, _) in &uploads {
                let _ = c
                    .abort_multipart_upload()
                    .bucket("mpu")
                    .key(&key)
                    .upload_id(id)
                    .send()
                    .await;
            }
        }
        assert_clean(&srv, "mpu", ROUNDS);
    }
);

storage_test!(quota_admits_exactly_what_fits, |srv| async move {
    // Room for one 2000-byte object, never two.
    let (ok, _, err) = srv.cli(&["element", "create", "small", "--capacity", "3000"]);
    assert!(ok, "create element with quota: {err}");
    let c = srv.client();
    let blob = |r: usize, w: usize| {
        let mut b = body(r, w);
        b.resize(2000, b'.');
        b
    };
    for r in 0..ROUNDS {
        let outcomes: Vec<Outcome> = join_all((0..WRITERS).map(|w| {
            let req = c
                .put_object()
                .bucket("small")
                .key(format!("r{r}-w{w}"))
                .body(ByteStream::from(blob(r, w)));
            async move { sdk_outcome(w, req.send().await) }
        }))
        .await;
        let winners: Vec<usize> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
        assert_eq!(winners.len(), 1, "round {r}: {outcomes:?}");
        for o in &outcomes {
            if let Err((status, code)) = o {
                assert_eq!((*status, code.as_str()), (507, "QuotaExceeded"));
            }
        }
        let key = format!("r{r}-w{}", winners[0]);
        assert_eq!(get(&c, "small", &key).await, blob(r, winners[0]));
        c.delete_object()
            .bucket("small")
            .key(&key)
            .send()
            .await
            .unwrap();
    }
    assert_clean(&srv, "small", 0);
});

storage_test!(
    metadata_update_races_an_overwrite_without_harm,
    |srv| async move {
        // CopyObject onto itself (REPLACE) rewrites the sidecar of the version it read; an
        // overwrite racing it must never leave the index pointing at removed files.
        let c = srv.client();
        create_bucket(&c, "meta").await;
        put(&c, "meta", "doc", "v0").await;
        for r in 0..ROUNDS {
            let updates = (0..WRITERS / 2).map(|w| {
                let req = c
                    .copy_object()
                    .bucket("meta")
                    .key("doc")
                    .copy_source("meta/doc")
                    .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                    .metadata("round", format!("{r}-{w}"));
                async move {
                    req.send()
                        .await
                        .map(|_| ())
                        .map_err(|e| sdk_err::<(), _>(Err(e)))
                }
            });
            let puts = (0..WRITERS / 2).map(|w| {
                let req = c
                    .put_object()
                    .bucket("meta")
                    .key("doc")
                    .body(ByteStream::from(body(r, w)));
                async move {
                    req.send()
                        .await
                        .map(|_| ())
                        .map_err(|e| sdk_err::<(), _>(Err(e)))
                }
            });
            let (u, p) = futures::join!(join_all(updates), join_all(puts));
            assert!(p.iter().all(|o| o.is_ok()), "puts: {p:?}");
            for o in u {
                if let Err(f) = o {
                    assert_eq!(
                        (f.status, f.code.as_str()),
                        (409, "ConditionalRequestConflict")
                    );
                }
            }
            let got = get(&c, "meta", "doc").await;
            assert!(
                (0..WRITERS / 2).any(|w| got == body(r, w)),
                "round {r}: {got:?}"
            );
        }
        assert_clean(&srv, "meta", 1);
    }
);

storage_test!(
    a_refused_write_left_by_a_crash_is_never_rolled_forward,
    |srv| async move {
        // A crash between a refused writer's file commit and its cleanup leaves a second,
        // newer file for a key of an `rw` element. Recovery must not let it replace the
        // document the index holds: overwrites never happen there.
        let mut srv = srv;
        let (ok, _, err) = srv.cli(&["element", "create", "sealed", "--mode", "rw"]);
        assert!(ok, "create rw element: {err}");
        let c = srv.client();
        put(&c, "sealed", "doc", "the original").await;
        srv.kill9();
        let kept = srv.object_on_disk("sealed", "doc").expect("doc on disk");
        let dir = kept.data.parent().expect("hour dir").to_path_buf();
        let loser_id = "ffffffff-ffff-7fff-bfff-ffffffffffff";
        let loser_name = format!("doc_admin_20260101T000000_{loser_id}");
        let mut attr = kept.json.clone();
        attr["file_id"] = loser_id.into();
        attr["storage_filename"] = loser_name.clone().into();
        attr["file_size"] = 9.into();
        std::fs::write(dir.join(&loser_name), b"the loser").expect("data");
        std::fs::write(
            dir.join(format!("{loser_name}.attr.json")),
            serde_json::to_vec_pretty(&attr).expect("json"),
        )
        .expect("sidecar");
        srv.restart().await;
        let c = srv.client();
        assert_eq!(get(&c, "sealed", "doc").await, b"the original");
        assert!(
            !dir.join(&loser_name).exists(),
            "refused write's data removed"
        );
        assert!(!dir.join(format!("{loser_name}.attr.json")).exists());
        assert_clean(&srv, "sealed", 1);
    }
);
