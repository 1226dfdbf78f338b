//! The bounded queue between the capture thread and inference.
//!
//! Both the waiting frames and the spare buffers live in fixed-capacity
//! `heapless` containers, so at most [`QUEUE_FRAMES`] + [`SPARE_FRAMES`] + 2
//! frame buffers exist at once (one filled by the capture thread, one used by
//! inference) and memory does not grow however far inference falls behind.
//! Buffers keep their capacity when they return to the spares, so a steady
//! stream allocates nothing per frame.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use heapless::Deque;

use super::RawFrame;

/// Frames that can wait for inference.
pub const QUEUE_FRAMES: usize = 4;

/// Empty buffers kept for reuse.
pub const SPARE_FRAMES: usize = 4;

/// Maximum wait of a producer on a full queue between two calls of its
/// `waiting` callback.
pub const WAIT_STEP: Duration = Duration::from_millis(50);

/// Policy of [`FrameQueue::push`] when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Drop the oldest waiting frame and count it (a live camera).
    DropOldest,
    /// Wait until inference takes a frame (a replay, where every frame counts).
    Wait,
}

struct State {
    ready: Deque<RawFrame, QUEUE_FRAMES>,
    spare: Deque<RawFrame, SPARE_FRAMES>,
    dropped: u64,
    closed: bool,
}

/// A bounded frame queue for one producer and one consumer thread.
pub struct FrameQueue {
    state: Mutex<State>,
    changed: Condvar,
    when_full: WhenFull,
}

impl FrameQueue {
    /// Creates an empty queue.
    pub fn new(when_full: WhenFull) -> FrameQueue {
        let state = State { ready: Deque::new(), spare: Deque::new(), dropped: 0, closed: false };
        FrameQueue { state: Mutex::new(state), changed: Condvar::new(), when_full }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in the other thread must not stop this one from shutting
        // down; the state is only counters and whole frames, never half-updated.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns a spare buffer to fill, or a new empty one while fewer than
    /// the maximum exist.
    pub fn take_spare(&self) -> RawFrame {
        self.lock().spare.pop_front().unwrap_or_default()
    }

    /// Returns a buffer to the spares; it is freed if the spares are full.
    pub fn recycle(&self, frame: RawFrame) {
        let _ = self.lock().spare.push_back(frame);
    }

    /// Appends a frame. When the queue is full, drops the oldest frame or
    /// waits, as set by [`WhenFull`]. Returns `false` (and recycles the frame)
    /// if the queue was closed.
    pub fn push(&self, frame: RawFrame) -> bool {
        self.push_while_waiting(frame, || {})
    }

    /// Like [`FrameQueue::push`], and calls `waiting` at least every
    /// [`WAIT_STEP`] while it waits for room, so that a producer held up by
    /// slow inference can tell it is alive.
    pub fn push_while_waiting(&self, frame: RawFrame, mut waiting: impl FnMut()) -> bool {
        let mut state = self.lock();
        while state.ready.is_full() && !state.closed {
            match self.when_full {
                WhenFull::DropOldest => {
                    if let Some(oldest) = state.ready.pop_front() {
                        state.dropped += 1;
                        let _ = state.spare.push_back(oldest);
                    }
                }
                WhenFull::Wait => {
                    state = self.changed.wait_timeout(state, WAIT_STEP).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
                    waiting();
                }
            }
        }
        if state.closed {
            let _ = state.spare.push_back(frame);
            return false;
        }
        // Not full: the loop above ran until there was room.
        let _ = state.ready.push_back(frame);
        drop(state);
        self.changed.notify_all();
        true
    }

    /// Takes the oldest waiting frame, waiting up to `timeout` for one.
    /// Returns `None` on timeout, or when the queue is closed and empty.
    pub fn pop(&self, timeout: Duration) -> Option<RawFrame> {
        let mut state = self.lock();
        if state.ready.is_empty() && !state.closed {
            state = self.changed.wait_timeout(state, timeout).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
        let frame = state.ready.pop_front();
        drop(state);
        if frame.is_some() {
            self.changed.notify_all();
        }
        frame
    }

    /// Closes the queue: the producer stops, and the consumer drains what is
    /// waiting, then gets `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Returns whether the queue is closed and has no frames left.
    pub fn is_finished(&self) -> bool {
        let state = self.lock();
        state.closed && state.ready.is_empty()
    }

    /// Returns how many frames were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn frame(sequence: u32) -> RawFrame {
        RawFrame { sequence, data: vec![sequence as u8; 1000], ..RawFrame::default() }
    }

    #[test]
    fn full_queue_drops_oldest() {
        let queue = FrameQueue::new(WhenFull::DropOldest);
        for sequence in 0..10 {
            assert!(queue.push(frame(sequence)), "push {sequence}");
        }
        assert_eq!(queue.dropped(), 10 - QUEUE_FRAMES as u64, "dropped count");
        let first = queue.pop(Duration::ZERO).unwrap();
        assert_eq!(first.sequence, (10 - QUEUE_FRAMES) as u32, "the newest frames remain");
    }

    #[test]
    fn spares_are_reused() {
        let queue = FrameQueue::new(WhenFull::DropOldest);
        let mut buffer = queue.take_spare();
        buffer.data.reserve(1 << 20);
        let pointer = buffer.data.as_ptr();
        queue.recycle(buffer);
        let again = queue.take_spare();
        assert_eq!(again.data.as_ptr(), pointer, "the recycled buffer comes back");
        assert!(again.data.capacity() >= 1 << 20, "with its capacity");
    }

    #[test]
    fn spares_are_bounded() {
        let queue = FrameQueue::new(WhenFull::DropOldest);
        for _ in 0..100 {
            queue.recycle(frame(0));
        }
        let mut count = 0;
        while queue.lock().spare.pop_front().is_some() {
            count += 1;
        }
        assert_eq!(count, SPARE_FRAMES, "extra buffers are freed");
    }

    #[test]
    fn waiting_queue_loses_nothing() {
        let queue = Arc::new(FrameQueue::new(WhenFull::Wait));
        let producer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                for sequence in 0..200 {
                    let mut buffer = queue.take_spare();
                    buffer.copy_from(&frame(sequence));
                    queue.push(buffer);
                }
                queue.close();
            })
        };
        let mut received = Vec::new();
        while !queue.is_finished() {
            if let Some(frame) = queue.pop(Duration::from_millis(50)) {
                received.push(frame.sequence);
                queue.recycle(frame);
            }
        }
        producer.join().unwrap();
        assert_eq!(received, (0..200).collect::<Vec<_>>(), "every frame, in order");
        assert_eq!(queue.dropped(), 0, "nothing dropped");
    }

    #[test]
    fn close_releases_waiting_producer() {
        let queue = Arc::new(FrameQueue::new(WhenFull::Wait));
        for sequence in 0..QUEUE_FRAMES as u32 {
            queue.push(frame(sequence));
        }
        let producer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.push(frame(99)))
        };
        std::thread::sleep(Duration::from_millis(50));
        queue.close();
        assert!(!producer.join().unwrap(), "a push into a closed queue reports false");
    }
}
