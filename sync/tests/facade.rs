//! The facade picks the backend it was entered with, and the epoch pointer
//! keeps replaced objects alive exactly as long as a reader may hold them.

use smmu_sync::{enter, spawn, Backend, Collector, Handle, Ordering, Rcu, Retire};
use std::sync::atomic::AtomicBool as StdBool;
use std::sync::Arc;

/// A retired object that records whether it was poisoned or dropped, and
/// a word its writer fills in after allocating it, before publishing it (a
/// facade atomic: a loom one under loom).
struct Probe {
    poisoned: StdBool,
    dropped: Arc<StdBool>,
    value: smmu_sync::AtomicU64,
}

impl Probe {
    fn new(dropped: &Arc<StdBool>) -> Self {
        Self { poisoned: StdBool::new(false), dropped: dropped.clone(), value: smmu_sync::AtomicU64::new(0) }
    }
    fn poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }
}

impl Retire for Probe {
    fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Flush until the collector has had every chance to reclaim.
fn flush_hard(h: &Handle) {
    for _ in 0..64 {
        h.pin().flush();
    }
}

/// A std world: one collector, a reader and a writer participant, and an
/// `Rcu` whose first object reports its drop through the returned flag.
fn std_world() -> (Collector, Rcu<Probe>, Arc<StdBool>) {
    let first_dropped = Arc::new(StdBool::new(false));
    (Collector::new(), Rcu::new(Probe::new(&first_dropped)), first_dropped)
}

fn fresh() -> Probe {
    Probe::new(&Arc::new(StdBool::new(false)))
}

#[test]
fn replaced_object_outlives_a_pinned_reader_then_is_freed() {
    let (collector, rcu, old_dropped) = std_world();
    let (reader, writer) = (collector.register(), collector.register());
    let rg = reader.pin();
    let seen = rcu.load(&rg);
    rcu.publish(fresh(), &writer.pin()).defer_free();
    flush_hard(&writer);
    assert!(!old_dropped.load(Ordering::SeqCst), "freed under a pinned reader");
    assert!(!seen.poisoned());
    drop(rg);
    flush_hard(&writer);
    assert!(old_dropped.load(Ordering::SeqCst), "never reclaimed after the grace period");
}

#[test]
fn a_replaced_version_is_found_until_it_is_retired() {
    let (collector, rcu, _) = std_world();
    let (reader, writer) = (collector.register(), collector.register());
    let rg = reader.pin();
    let first: *const Probe = rcu.load(&rg);
    assert_eq!(rcu.version(), 0);
    let wg = writer.pin();
    let old = rcu.publish(fresh(), &wg);
    assert_eq!(rcu.version(), 1);
    // A CPU that has not seen the new pointer still finds the old object.
    let at = |v: u64| rcu.load_version(&rg, || v).1;
    assert!(std::ptr::eq(at(0).unwrap(), first));
    assert!(std::ptr::eq(at(1).unwrap(), rcu.load(&rg)));
    old.defer_free();
    assert!(at(0).is_none(), "a retired version is gone");
    assert!(at(2).is_none(), "a version never published");
}

#[test]
fn defer_to_writer_frees_only_when_the_writer_reclaims() {
    let (collector, rcu, old_dropped) = std_world();
    let (reader, writer) = (collector.register(), collector.register());
    let rg = reader.pin();
    {
        let wg = writer.pin();
        rcu.publish(fresh(), &wg).defer_to_writer();
        // Hand the deferred work to the global queue, where readers collect.
        wg.flush();
    }
    flush_hard(&reader);
    rcu.reclaim();
    assert!(!old_dropped.load(Ordering::SeqCst), "freed under a pinned reader");
    drop(rg);
    // The reader's own collection runs the deferred work: it must not free.
    flush_hard(&reader);
    assert!(!old_dropped.load(Ordering::SeqCst), "a reader ran the destructor");
    let before = smmu_sync::frees_on_this_thread();
    rcu.reclaim();
    assert!(old_dropped.load(Ordering::SeqCst), "the writer's reclaim frees it");
    assert_eq!(smmu_sync::frees_on_this_thread(), before + 1, "and counts it");
}

#[test]
fn free_now_poisons_at_once_but_keeps_memory_valid() {
    let (collector, rcu, old_dropped) = std_world();
    let (reader, writer) = (collector.register(), collector.register());
    let rg = reader.pin();
    let seen = rcu.load(&rg);
    rcu.publish(fresh(), &writer.pin()).free_now();
    flush_hard(&writer);
    assert!(seen.poisoned(), "the reader must observe the early free");
    assert!(!old_dropped.load(Ordering::SeqCst));
}

/// Readers hold each object across a window in which the writer keeps
/// republishing and collecting; none may see what it holds poisoned. Fails
/// with `free_now` in place of `defer_free` (the free-replaced-array-
/// immediately bug), and checks the writer really raced the readers.
#[test]
fn real_threads_read_while_a_writer_republishes() {
    let collector = Arc::new(Collector::new());
    let rcu = Arc::new(Rcu::new(fresh()));
    let rounds = if cfg!(miri) { 20 } else { 2000 };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (c, r) = (collector.clone(), rcu.clone());
            spawn(move || {
                let h = c.register();
                let mut seen = std::collections::HashSet::new();
                for _ in 0..rounds {
                    let g = h.pin();
                    let held = r.load(&g);
                    seen.insert(held.value.load(Ordering::SeqCst));
                    for _ in 0..4 {
                        std::thread::yield_now();
                    }
                    assert!(!held.poisoned(), "an object was freed under a pinned reader");
                }
                seen.len()
            })
        })
        .collect();
    let h = collector.register();
    for k in 1..=rounds {
        let g = h.pin();
        let next = fresh();
        next.value.store(k, Ordering::SeqCst);
        rcu.publish(next, &g).defer_free();
        g.flush();
        std::thread::yield_now();
    }
    for r in readers {
        assert!(r.join().unwrap() > 1, "the readers never saw the writer republish");
    }
}

#[test]
#[cfg_attr(miri, ignore = "shuttle switches stacks with inline assembly")]
fn shuttle_tasks_get_distinct_epoch_participants() {
    shuttle::check_random(
        || {
            let _b = enter(Backend::Shuttle);
            let collector = Arc::new(Collector::new());
            let old_dropped = Arc::new(StdBool::new(false));
            let rcu = Arc::new(Rcu::new(Probe::new(&old_dropped)));
            let pinned = Arc::new(smmu_sync::AtomicBool::new(false));
            let release = Arc::new(smmu_sync::AtomicBool::new(false));

            let reader = {
                let (c, r, p, rel) = (collector.clone(), rcu.clone(), pinned.clone(), release.clone());
                spawn(move || {
                    let h = c.register();
                    let g = h.pin();
                    let seen = r.load(&g);
                    p.store(true, Ordering::SeqCst);
                    while !rel.load(Ordering::SeqCst) {
                        smmu_sync::yield_now();
                    }
                    assert!(!seen.poisoned());
                })
            };
            let writer = {
                let (c, r, d) = (collector.clone(), rcu.clone(), old_dropped.clone());
                spawn(move || {
                    let h = c.register();
                    while !pinned.load(Ordering::SeqCst) {
                        smmu_sync::yield_now();
                    }
                    // Both tasks run on one OS thread; a thread-keyed
                    // participant would make this handle look pinned too.
                    assert!(!h.is_pinned(), "writer shares the reader's participant");
                    r.publish(fresh(), &h.pin()).defer_free();
                    flush_hard(&h);
                    assert!(!d.load(Ordering::SeqCst), "reclaimed while another task is pinned");
                    release.store(true, Ordering::SeqCst);
                })
            };
            reader.join().unwrap();
            writer.join().unwrap();
        },
        50,
    );
}

#[test]
#[cfg_attr(miri, ignore = "shuttle switches stacks with inline assembly")]
fn synchronize_waits_for_every_pinned_reader() {
    shuttle::check_random(
        || {
            let _b = enter(Backend::Shuttle);
            let collector = Arc::new(Collector::new());
            let inside = Arc::new(smmu_sync::AtomicBool::new(false));
            let reader = {
                let (c, inside) = (collector.clone(), inside.clone());
                spawn(move || {
                    let h = c.register();
                    let _g = h.pin();
                    inside.store(true, Ordering::SeqCst);
                    smmu_sync::yield_now();
                    inside.store(false, Ordering::SeqCst);
                })
            };
            let h = collector.register();
            let was_inside = inside.load(Ordering::SeqCst);
            h.synchronize();
            assert!(!(was_inside && inside.load(Ordering::SeqCst)), "returned while a reader that was pinned still is");
            reader.join().unwrap();
        },
        200,
    );
}

/// Under loom's C11 model: a reader finds the old object or the new one,
/// and the new one with what its writer stored into it before publishing
/// (the release of `publish` against the acquire of `load`). Fails if
/// either is relaxed. (Nothing is freed under loom, so a freed object is
/// not what this can see.)
#[test]
#[cfg_attr(miri, ignore = "loom's scheduler is not built for miri")]
fn loom_reader_sees_the_old_object_or_the_new_one_initialised() {
    loom::model(|| {
        let _b = enter(Backend::Loom);
        let collector = Arc::new(Collector::new());
        let first = fresh();
        first.value.store(1, Ordering::Relaxed);
        let rcu = Arc::new(Rcu::new(first));
        let r = {
            let (c, r) = (collector.clone(), rcu.clone());
            spawn(move || {
                let h = c.register();
                let g = h.pin();
                let v = r.load(&g).value.load(Ordering::Relaxed);
                assert!(v == 1 || v == 7, "read {v}: the new object before its initialising store");
            })
        };
        let h = collector.register();
        let next = fresh();
        next.value.store(7, Ordering::Relaxed);
        rcu.publish(next, &h.pin()).defer_free();
        r.join().unwrap();
    });
}

#[test]
#[cfg_attr(miri, ignore = "shuttle switches stacks with inline assembly")]
fn primitives_follow_the_entered_backend() {
    // A shuttle mutex used outside an execution panics; a std one does not.
    // Building inside `enter(Shuttle)` must therefore yield shuttle objects.
    shuttle::check_random(
        || {
            let _b = enter(Backend::Shuttle);
            assert_eq!(smmu_sync::backend(), Backend::Shuttle);
            let m = Arc::new(smmu_sync::Mutex::new(0u32));
            let t = {
                let m = m.clone();
                spawn(move || {
                    assert_eq!(smmu_sync::backend(), Backend::Shuttle);
                    *m.lock() += 1;
                })
            };
            *m.lock() += 1;
            t.join().unwrap();
            assert_eq!(*m.lock(), 2);
        },
        10,
    );
    assert_eq!(smmu_sync::backend(), Backend::Std, "enter guard must restore the backend");
}

/// The native backend's rwlock is a bare lock word, not the model's
/// bookkeeping: it must still exclude. Two reader threads and a writer on
/// real threads; a reader inside while the writer holds the lock (or the
/// reverse) fails it, as a read path that forgot the writer bit would.
#[test]
fn native_rwlock_excludes_readers_from_the_writer() {
    use smmu_sync::{RwLock, RwLockKind};
    use std::sync::atomic::AtomicUsize;
    let _native = enter(Backend::Native);
    let lock = Arc::new(RwLock::new(RwLockKind::Queued));
    let (readers, writing) = (Arc::new(AtomicUsize::new(0)), Arc::new(StdBool::new(false)));
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let (lock, readers, writing) = (lock.clone(), readers.clone(), writing.clone());
            spawn(move || {
                for _ in 0..if cfg!(miri) { 100 } else { 20_000 } {
                    if t == 0 {
                        let _w = lock.write_lock();
                        writing.store(true, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(
                            readers.load(std::sync::atomic::Ordering::SeqCst),
                            0,
                            "a reader inside the write lock"
                        );
                        writing.store(false, std::sync::atomic::Ordering::SeqCst);
                    } else {
                        let _r = lock.read_lock();
                        readers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert!(!writing.load(std::sync::atomic::Ordering::SeqCst), "a writer inside the read lock");
                        readers.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no thread saw the other side inside");
    }
}
