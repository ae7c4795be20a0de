//! The iommufd paths a VMM drives: the object layer (`objects.rs`: ids,
//! types, dependencies, `IOMMU_HWPT_INVALIDATE`), the user-array helpers
//! and core loop (`array.rs`), the arm-smmu-v3 vIOMMU's invalidation op
//! (`vsmmu.rs`), and IOAS pins and HW queues (`ioas.rs`, `hw_queue.rs`).
//! A VMM sees only these calls' errnos and `entry_num`s.

mod array;
mod hw_queue;
mod ioas;
mod objects;
mod vsmmu;

pub use array::{cache_invalidate_user, copy_entry, UserArray, UserMem, ENTRY_SIZE, USER_BASE};
pub use ioas::{HwQueue, HwQueueAlloc, HW_QUEUE_TYPE_DEFAULT, HW_QUEUE_TYPE_TEGRA241_CMDQV, MAX_QUEUES};
pub use objects::{HwptInvalidate, Ictx, ObjType};
pub use vsmmu::{Vsmmu, CMDQ_BATCH_ENTRIES, DATA_ARM_SMMUV3};
