//! How the change stream learns that new changes were committed.
//! [`ChangeNotifier`] is the small trait a backend implements (the embedded
//! default is in-process; several instances would fan out through their
//! database). A notification carries only the newest sequence number:
//! subscribers read what they may see from the change log, so a missed or
//! coalesced notification can never lose a change.

use tokio::sync::watch;

pub trait ChangeNotifier: Send + Sync + 'static {
    /// Announces that every change up to `seq` is committed.
    fn publish(&self, seq: u64);
    /// A receiver that always holds the newest announced sequence number.
    fn subscribe(&self) -> watch::Receiver<u64>;
}

/// Notifies the subscribers of this process.
pub struct LocalNotifier {
    tx: watch::Sender<u64>,
}

impl LocalNotifier {
    pub fn new(head: u64) -> Self {
        LocalNotifier {
            tx: watch::Sender::new(head),
        }
    }
}

impl ChangeNotifier for LocalNotifier {
    fn publish(&self, seq: u64) {
        self.tx.send_if_modified(|head| {
            let newer = seq > *head;
            if newer {
                *head = seq;
            }
            newer
        });
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

/// The suite every [`ChangeNotifier`] implementation must pass.
#[cfg(test)]
pub(crate) async fn conformance_suite(notifier: &dyn ChangeNotifier) {
    use std::time::Duration;
    let mut rx = notifier.subscribe();
    let start = *rx.borrow_and_update();
    notifier.publish(start + 1);
    notifier.publish(start + 3);
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .expect("a subscriber is woken")
        .unwrap();
    assert_eq!(
        *rx.borrow_and_update(),
        start + 3,
        "coalesces to the newest"
    );
    // An older sequence never moves the head back.
    notifier.publish(start + 2);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rx.changed())
            .await
            .is_err()
    );
    assert_eq!(*notifier.subscribe().borrow(), start + 3);
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn local_notifier_passes_the_suite() {
        super::conformance_suite(&super::LocalNotifier::new(10)).await;
    }
}
