//! The black-box suite against the real server under each framework (in-process, real sockets), and the parity
//! of the two frameworks' answers.

mod axum {
    avb_testkit::blackbox_suite!(avb_testkit::blackbox::Framework::Axum);
}

mod actix {
    avb_testkit::blackbox_suite!(avb_testkit::blackbox::Framework::Actix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_and_actix_answer_identically() {
    if let Err(failure) = avb_testkit::blackbox::parity::axum_and_actix_answer_identically().await {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_stop_gracefully_under_both_frameworks() {
    for framework in avb_testkit::blackbox::Framework::ALL {
        let server = framework.start().await.unwrap();
        server.get("/health").send().await.unwrap().expect(200).unwrap();
        server.stop().await.unwrap();
    }
}
