/*
 * The kernel as the series' C sees it, with the model behind it: the
 * project's shim, not kernel code. Every primitive that another CPU, the
 * SMMU or the allocator could observe calls the model through `shim`, the
 * table of callbacks `glue_init` receives, and every such call is a
 * scheduling point. Plain loads and stores of fields no primitive touches
 * are outside the model's weak memory: they are seen at once by every CPU.
 */
#ifndef SMMU_STRESS_KERNEL_H
#define SMMU_STRESS_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;
typedef u64 dma_addr_t;
typedef u32 ioasid_t;
typedef unsigned int gfp_t;

#define GFP_KERNEL 0u
#define IOMMU_NO_PASID 0u
#define __rcu
#define __counted_by(member)
#define __always_inline inline
#define __maybe_unused __attribute__((unused))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define VISIBLE_IF_KUNIT
#define EXPORT_SYMBOL_IF_KUNIT(sym)
#define EXPORT_SYMBOL_GPL(sym)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define cmp_int(l, r) (((l) > (r)) - ((l) < (r)))
#define struct_size(p, member, n) (sizeof(*(p)) + sizeof((p)->member[0]) * (size_t)(n))
#define __ffs(x) ((unsigned long)__builtin_ctzl(x))
#define ilog2(n) ((int)(63 - __builtin_clzll((unsigned long long)(n))))
#define BIT(n) (1UL << (n))
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))

/* ERR_PTR and friends, as the kernel encodes them. */
#define MAX_ERRNO 4095
#define ENOMEM 12
#define EINVAL 22
#define IS_ERR_VALUE(x) ((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)
static inline void *ERR_PTR(long error) { return (void *)error; }
static inline long PTR_ERR(const void *ptr) { return (long)ptr; }
static inline bool IS_ERR(const void *ptr) { return IS_ERR_VALUE((unsigned long)ptr); }
static inline bool IS_ERR_OR_NULL(const void *ptr) { return !ptr || IS_ERR(ptr); }

/* The kernel rwlock: a handle on one of the sync facade's rwlocks. */
typedef struct { u64 id; } rwlock_t;
typedef struct { u64 unused; } spinlock_t;
struct rcu_head { void *next; void (*func)(struct rcu_head *); };
struct list_head { struct list_head *next, *prev; };
struct mutex { u64 unused; };
struct device { u64 unused; };
typedef struct { int refs; } refcount_t;

struct arm_smmu_device;
struct arm_smmu_cmdq_ent;
struct arm_smmu_cmdq_batch;

/* What the model does for the C, set once by glue_init. */
struct shim_ops {
	/* READ_ONCE / WRITE_ONCE and the like on `size` bytes at `addr`. */
	u64 (*read)(const void *addr, unsigned size);
	void (*write)(void *addr, unsigned size, u64 val);
	/* An atomic add; `ordered`: fully ordered (refcount_dec_and_test).
	 * Returns the old value. */
	u64 (*add)(void *addr, unsigned size, s64 delta, int ordered);
	/* rcu_dereference(*p) and rcu_assign_pointer(*p, v). */
	void *(*deref)(void *const *p);
	void (*assign)(void **p, void *v);
	/* 0: smp_mb, 1: smp_wmb/wmb/dma_wmb, 2: smp_rmb/rmb/dma_rmb. */
	void (*fence)(int kind);
	void *(*zalloc)(size_t size);
	/* `rcu`: kfree_rcu, freed once a grace period has passed. */
	void (*free)(const void *p, int rcu);
	u64 (*rwlock_new)(void);
	void (*lock)(rwlock_t *l, int write, int irqsave);
	void (*unlock)(rwlock_t *l, int write);
	void (*warn)(const char *func, int line, const char *cond);
	/* Issue `n` commands on the SMMU's queue, then a CMD_SYNC. */
	void (*issue)(struct arm_smmu_device *smmu, const struct arm_smmu_cmdq_ent *ents, int n);
	/* arm_smmu_cmdq_batch_add_range, in Rust: each command through
	 * glue_batch_add. */
	void (*add_range)(struct arm_smmu_device *smmu, struct arm_smmu_cmdq_batch *cmds,
			  struct arm_smmu_cmdq_ent *cmd, unsigned long iova, size_t size,
			  size_t granule, size_t pgsize);
	/* arm_smmu_atc_inv_to_cmd. */
	void (*atc_inv_to_cmd)(int ssid, unsigned long iova, size_t size, struct arm_smmu_cmdq_ent *cmd);
	/* `n` C functions were entered (-finstrument-functions): the
	 * watchdog's steps, so a loop that calls nothing else still ends. */
	void (*tick)(unsigned n);
	/* The series' C faulted at `addr` in `func`: the kernel's oops. Never
	 * returns. */
	void (*oops)(uintptr_t addr, const char *func);
};

extern const struct shim_ops *shim;

#define READ_ONCE(x)                                                          \
	({                                                                    \
		union { __typeof__(x) v; u64 raw; } __u;                     \
		__u.raw = shim->read((const void *)&(x), sizeof(x));          \
		__u.v;                                                        \
	})
#define WRITE_ONCE(x, val)                                                    \
	do {                                                                  \
		union { __typeof__(x) v; u64 raw; } __u = { .raw = 0 };      \
		__u.v = (val);                                                \
		shim->write((void *)&(x), sizeof(x), __u.raw);                \
	} while (0)

#define smp_mb() shim->fence(0)
#define smp_wmb() shim->fence(1)
#define wmb() shim->fence(1)
#define dma_wmb() shim->fence(1)
#define smp_rmb() shim->fence(2)
#define rmb() shim->fence(2)
#define dma_rmb() shim->fence(2)
#define barrier() __asm__ __volatile__("" ::: "memory")

#define rcu_dereference(p) ((__typeof__(p))shim->deref((void *const *)&(p)))
#define rcu_dereference_protected(p, c) rcu_dereference(p)
#define rcu_dereference_raw(p) rcu_dereference(p)
#define rcu_assign_pointer(p, v) shim->assign((void **)&(p), (void *)(v))
#define RCU_INIT_POINTER(p, v) rcu_assign_pointer(p, v)
/* The model's caller pins the CPU's epoch around each call into the C. */
#define rcu_read_lock() do { } while (0)
#define rcu_read_unlock() do { } while (0)

#define lockdep_is_held(l) 1
#define lockdep_assert_held(l) do { } while (0)
#define iommu_group_mutex_assert(dev) do { } while (0)
#define might_sleep() do { } while (0)

static inline void *kzalloc(size_t size, gfp_t gfp) { (void)gfp; return shim->zalloc(size); }
static inline void *kcalloc(size_t n, size_t size, gfp_t gfp) { (void)gfp; return shim->zalloc(n * size); }
static inline void *kmalloc(size_t size, gfp_t gfp) { (void)gfp; return shim->zalloc(size); }
static inline void kfree(const void *p) { if (p) shim->free(p, 0); }
#define kfree_rcu(ptr, field) shim->free((ptr), 1)

static inline void rwlock_init(rwlock_t *l) { l->id = shim->rwlock_new(); }
#define read_lock(l) shim->lock((l), 0, 0)
#define read_unlock(l) shim->unlock((l), 0)
#define write_lock(l) shim->lock((l), 1, 0)
#define write_unlock(l) shim->unlock((l), 1)
#define read_lock_irqsave(l, flags) do { (void)(flags); shim->lock((l), 0, 1); } while (0)
#define read_unlock_irqrestore(l, flags) do { (void)(flags); shim->unlock((l), 0); } while (0)
#define write_lock_irqsave(l, flags) do { (void)(flags); shim->lock((l), 1, 1); } while (0)
#define write_unlock_irqrestore(l, flags) do { (void)(flags); shim->unlock((l), 1); } while (0)
#define spin_lock_init(l) do { (void)(l); } while (0)
#define INIT_LIST_HEAD(l) do { (l)->next = (l); (l)->prev = (l); } while (0)

static inline int refcount_read(const refcount_t *r) { return (int)shim->read(&r->refs, sizeof(r->refs)); }
static inline void refcount_set(refcount_t *r, int n) { shim->write(&r->refs, sizeof(r->refs), (u64)(u32)n); }
static inline void refcount_inc(refcount_t *r) { shim->add(&r->refs, sizeof(r->refs), 1, 0); }
static inline bool refcount_dec_and_test(refcount_t *r)
{
	return (int)shim->add(&r->refs, sizeof(r->refs), -1, 1) == 1;
}

#define WARN_ON(cond)                                                         \
	({                                                                    \
		int __c = !!(cond);                                           \
		if (__c)                                                      \
			shim->warn(__func__, __LINE__, #cond);                \
		__c;                                                          \
	})
#define WARN_ON_ONCE(cond) WARN_ON(cond)
#define dev_warn(dev, ...) do { (void)(dev); } while (0)
#define dev_err(dev, ...) do { (void)(dev); } while (0)

/* The SMMU instance: one entry of a per-world array, in id order, so the
 * series' pointer comparisons order instances as the model does. */
#define ARM_SMMU_FEAT_RANGE_INV (1u << 0)
#define ARM_SMMU_FEAT_E2H (1u << 1)
#define ARM_SMMU_FEAT_ATS (1u << 2)
struct arm_smmu_device {
	u32 features;
	u32 id;
};

/* Commands, with the architected opcodes. */
#define CMDQ_OP_CFGI_STE 0x3
#define CMDQ_OP_CFGI_CD 0x5
#define CMDQ_OP_TLBI_NH_ALL 0x10
#define CMDQ_OP_TLBI_NH_ASID 0x11
#define CMDQ_OP_TLBI_NH_VA 0x12
#define CMDQ_OP_TLBI_EL2_ASID 0x21
#define CMDQ_OP_TLBI_EL2_VA 0x22
#define CMDQ_OP_TLBI_S12_VMALL 0x28
#define CMDQ_OP_TLBI_S2_IPA 0x2a
#define CMDQ_OP_ATC_INV 0x40
#define CMDQ_OP_CMD_SYNC 0x46
#define CMDQ_BATCH_ENTRIES 64

struct arm_smmu_cmdq_ent {
	u8 opcode;
	bool substream_valid;
	union {
		struct {
			u8 num;
			u8 scale;
			u16 asid;
			u16 vmid;
			bool leaf;
			u8 ttl;
			u8 tg;
			u64 addr;
		} tlbi;
		struct {
			u32 sid;
			u32 ssid;
			u64 addr;
			u8 size;
			bool global;
		} atc;
		struct {
			u32 sid;
			u32 ssid;
		} cfgi;
	};
};

struct arm_smmu_cmdq_batch {
	struct arm_smmu_cmdq_ent ents[CMDQ_BATCH_ENTRIES];
	int num;
	/* The instance whose queue the batch goes to, as batch_init chose it. */
	struct arm_smmu_device *smmu;
};

static inline void arm_smmu_cmdq_batch_init(struct arm_smmu_device *smmu, struct arm_smmu_cmdq_batch *cmds,
					    struct arm_smmu_cmdq_ent *ent)
{
	(void)ent;
	cmds->num = 0;
	cmds->smmu = smmu;
}

/* As the kernel's: a full batch is issued on the queue batch_init chose;
 * the caller ends a batch before it changes instance. */
static inline void arm_smmu_cmdq_batch_add(struct arm_smmu_device *smmu, struct arm_smmu_cmdq_batch *cmds,
					   struct arm_smmu_cmdq_ent *cmd)
{
	if (cmds->num == CMDQ_BATCH_ENTRIES - 1) {
		shim->issue(cmds->smmu, cmds->ents, cmds->num);
		arm_smmu_cmdq_batch_init(smmu, cmds, cmd);
	}
	cmds->ents[cmds->num++] = *cmd;
}

static inline int arm_smmu_cmdq_batch_submit(struct arm_smmu_device *smmu, struct arm_smmu_cmdq_batch *cmds)
{
	(void)smmu;
	if (cmds->num)
		shim->issue(cmds->smmu, cmds->ents, cmds->num);
	return 0;
}

static inline int arm_smmu_cmdq_issue_cmd_with_sync(struct arm_smmu_device *smmu, struct arm_smmu_cmdq_ent *ent)
{
	shim->issue(smmu, ent, 1);
	return 0;
}

static inline void arm_smmu_atc_inv_to_cmd(int ssid, unsigned long iova, size_t size, struct arm_smmu_cmdq_ent *cmd)
{
	shim->atc_inv_to_cmd(ssid, iova, size, cmd);
}

#endif
