use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;
use xcore::{
    Xcore,
    events::{Event, EventError, Flow, SubscribeOptions},
};

/// Records the events of an `Xcore` that match a pattern, for assertions.
///
/// It subscribes as the host with the highest priority, so it sees every matching event
/// before any plugin handler can stop the propagation.
///
/// ```
/// use xcore::CallContext;
/// use xcore_testkit::{EventRecorder, TestApp};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = TestApp::builder().boot().await.unwrap();
/// let recorder = EventRecorder::attach(app.xcore(), "user.*").unwrap();
/// let events = app.xcore().events();
/// events.emit(&CallContext::host(), "user.created", serde_json::json!({"id": 1})).await.unwrap();
/// assert_eq!(recorder.names(), ["user.created"]);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EventRecorder {
    seen: Arc<Mutex<Vec<Event>>>,
    notify: Arc<Notify>,
}

impl EventRecorder {
    /// Starts recording the events matching `pattern` (`**` for all).
    pub fn attach(xcore: &Xcore, pattern: &str) -> Result<Self, EventError> {
        let recorder = Self {
            seen: Arc::default(),
            notify: Arc::default(),
        };
        let (seen, notify) = (recorder.seen.clone(), recorder.notify.clone());
        xcore.events().subscribe_with(
            pattern,
            SubscribeOptions::new().priority(i32::MAX),
            move |event: Event| {
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(event);
                notify.notify_waiters();
                std::future::ready(Ok::<_, std::convert::Infallible>(Flow::Continue))
            },
        )?;
        Ok(recorder)
    }

    /// Every event recorded, in order.
    pub fn events(&self) -> Vec<Event> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The names of the events recorded, in order.
    pub fn names(&self) -> Vec<String> {
        self.events().iter().map(|e| e.name().to_owned()).collect()
    }

    /// Waits until an event named `name` has been recorded, at most `timeout`.
    pub async fn wait_for(&self, name: &str, timeout: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if let Some(e) = self.events().into_iter().find(|e| e.name() == name) {
                return Some(e);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}
