/*
 * The project's glue around the series' functions: the entry points the
 * model calls (exported; the series' functions are mostly static), the
 * setup of the pre-series structures, and the series' functions whose
 * whole body the input lacks, as callbacks into the model's Rust.
 * Compiled in one translation unit after the series' functions.
 */
#define GLUE __attribute__((visibility("default"), no_instrument_function))
#define GLUE_LOCAL static __attribute__((no_instrument_function))

#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

const struct shim_ops *shim;

/*
 * A fault in the series' C (a NULL or wild pointer it dereferences) is the
 * kernel's oops: it must become the model's verdict, with the failure
 * written and replayed, not the end of the process. Every entry point
 * records a frame on its own stack; the SIGSEGV/SIGBUS handler, when the
 * faulting instruction is in this library, jumps back to the innermost
 * frame of the faulting stack (the nearest above the faulting stack
 * pointer: each simulated CPU runs on a stack of its own, and the fault
 * is on the one that runs) and the entry reports the oops to the model.
 */
struct glue_frame {
	sigjmp_buf jb;
	uintptr_t addr, pc;
};

#define GLUE_FRAMES 512
static __thread struct glue_frame *glue_frames[GLUE_FRAMES];
static struct sigaction glue_old_segv, glue_old_bus;

struct glue_sym {
	const void *fn;
	const char *name;
};
#define GLUE_SYM(f) { (const void *)(f), #f },
static const struct glue_sym glue_syms[] = { SERIES_SYMBOLS { NULL, NULL } };

/* The series function at or before `pc`. */
GLUE_LOCAL const char *glue_symbol(uintptr_t pc)
{
	const char *name = "the glue";
	uintptr_t best = 0;
	size_t i;

	for (i = 0; glue_syms[i].fn; i++) {
		uintptr_t at = (uintptr_t)glue_syms[i].fn;

		if (at <= pc && at > best) {
			best = at;
			name = glue_syms[i].name;
		}
	}
	return name;
}

GLUE_LOCAL void glue_frame_push(struct glue_frame *f)
{
	size_t i;

	for (i = 0; i < GLUE_FRAMES; i++)
		if (!glue_frames[i]) {
			glue_frames[i] = f;
			return;
		}
}

/* Runs on return and on unwinding (-fexceptions) alike. */
GLUE_LOCAL void glue_frame_pop(struct glue_frame **f)
{
	size_t i;

	for (i = 0; i < GLUE_FRAMES; i++)
		if (glue_frames[i] == *f)
			glue_frames[i] = NULL;
}

/* The faulting instruction and stack pointer (0: an architecture this
 * glue cannot read them on, whose faults stay fatal). */
GLUE_LOCAL void glue_context(void *uc, uintptr_t *pc, uintptr_t *sp)
{
	const ucontext_t *u = uc;
#if defined(__x86_64__)
	*pc = (uintptr_t)u->uc_mcontext.gregs[REG_RIP];
	*sp = (uintptr_t)u->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
	*pc = (uintptr_t)u->uc_mcontext.pc;
	*sp = (uintptr_t)u->uc_mcontext.sp;
#else
	(void)u;
	*pc = *sp = 0;
#endif
}

GLUE_LOCAL void glue_fault(int sig, siginfo_t *info, void *uc)
{
	const struct sigaction *old = sig == SIGBUS ? &glue_old_bus : &glue_old_segv;
	struct glue_frame *best = NULL;
	uintptr_t pc, sp;
	Dl_info mine, at;
	size_t i;

	glue_context(uc, &pc, &sp);
	if (pc && dladdr((void *)glue_fault, &mine) && dladdr((void *)pc, &at) && at.dli_fbase == mine.dli_fbase) {
		for (i = 0; i < GLUE_FRAMES; i++) {
			struct glue_frame *f = glue_frames[i];

			if (f && (uintptr_t)f > sp && (!best || f < best))
				best = f;
		}
	}
	if (!best) {
		/* Not the series' fault: whoever handled it before. */
		if (old->sa_flags & SA_SIGINFO)
			old->sa_sigaction(sig, info, uc);
		else if (old->sa_handler != SIG_IGN && old->sa_handler != SIG_DFL)
			old->sa_handler(sig);
		else
			sigaction(sig, old, NULL);
		return;
	}
	best->addr = (uintptr_t)info->si_addr;
	best->pc = pc;
	siglongjmp(best->jb, 1);
}

/* Each entry point that runs the series' C starts with this: a fault
 * inside comes back here and is reported; the report never returns. */
#define GLUE_GUARD                                                             \
	struct glue_frame glue_fr;                                             \
	struct glue_frame *glue_frp __attribute__((cleanup(glue_frame_pop))) = &glue_fr; \
	glue_frame_push(&glue_fr);                                             \
	if (sigsetjmp(glue_fr.jb, 0)) {                                        \
		volatile struct glue_frame *v = &glue_fr;                      \
		shim->oops(v->addr, glue_symbol(v->pc));                       \
	}

GLUE void glue_init(const struct shim_ops *ops)
{
	struct sigaction sa;

	shim = ops;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = glue_fault;
	/* SA_NODEFER: the jump leaves the handler without restoring the mask. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &glue_old_segv);
	sigaction(SIGBUS, &sa, &glue_old_bus);
}

/* -finstrument-functions: every C function the series wrote ticks the
 * watchdog when entered, reported in batches (a call into the model per
 * function entry would make a spinning loop cost several times the Rust
 * one). The count is per OS thread, as the watchdog's is, and starts from
 * zero in each execution (glue_reset_ticks, when its world is made), so a
 * schedule ticks the same whether explored or replayed; a livelock is
 * declared at most a batch late. */
#define GLUE_TICK_BATCH 64
static __thread unsigned glue_ticks;

GLUE void glue_reset_ticks(void)
{
	glue_ticks = 0;
}

__attribute__((no_instrument_function)) void __cyg_profile_func_enter(void *fn, void *site)
{
	(void)fn;
	(void)site;
	if (++glue_ticks == GLUE_TICK_BATCH) {
		glue_ticks = 0;
		shim->tick(GLUE_TICK_BATCH);
	}
}

__attribute__((no_instrument_function)) void __cyg_profile_func_exit(void *fn, void *site)
{
	(void)fn;
	(void)site;
}

#ifdef GLUE_arm_smmu_cmdq_batch_add_range
/* The series changes arm_smmu_cmdq_batch_add_range in hunks around lines
 * it does not show: the model's own implementation of the same step. */
static void arm_smmu_cmdq_batch_add_range(struct arm_smmu_device *smmu, struct arm_smmu_cmdq_batch *cmds,
					  struct arm_smmu_cmdq_ent *cmd, unsigned long iova, size_t size,
					  size_t granule, size_t pgsize)
{
	shim->add_range(smmu, cmds, cmd, iova, size, granule, pgsize);
}
#endif

GLUE void glue_batch_add(struct arm_smmu_device *smmu, struct arm_smmu_cmdq_batch *cmds,
			 struct arm_smmu_cmdq_ent *cmd)
{
	GLUE_GUARD
	arm_smmu_cmdq_batch_add(smmu, cmds, cmd);
}

enum glue_size { GLUE_SMMU, GLUE_MASTER, GLUE_STREAM, GLUE_DOMAIN, GLUE_STATE, GLUE_BATCH, GLUE_ENT };

GLUE size_t glue_sizeof(int what)
{
	switch (what) {
	case GLUE_SMMU: return sizeof(struct arm_smmu_device);
	case GLUE_MASTER: return sizeof(struct arm_smmu_master);
	case GLUE_STREAM: return sizeof(struct arm_smmu_stream);
	case GLUE_DOMAIN: return sizeof(struct arm_smmu_domain);
	case GLUE_STATE: return sizeof(struct arm_smmu_attach_state);
	case GLUE_BATCH: return sizeof(struct arm_smmu_cmdq_batch);
	case GLUE_ENT: return sizeof(struct arm_smmu_cmdq_ent);
	}
	return 0;
}

GLUE void glue_smmu_init(struct arm_smmu_device *smmu, u32 id, u32 features)
{
	smmu->id = id;
	smmu->features = features;
}

/* arm_smmu_insert_master's part the series changes: the streams (sorted by
 * the caller) and the preallocated build_invs scratch, 2 entries plus one
 * per stream ID for an ATS-capable master. Returns 0, or -ENOMEM. */
GLUE int glue_master_init(struct arm_smmu_master *master, struct arm_smmu_device *smmu,
			  struct arm_smmu_stream *streams, const u32 *sids, unsigned int n, bool ats_supported)
{
	GLUE_GUARD
	unsigned int i;

	master->smmu = smmu;
	master->streams = streams;
	master->num_streams = n;
	for (i = 0; i < n; i++) {
		streams[i].id = sids[i];
		streams[i].master = master;
	}
	master->build_invs = arm_smmu_invs_alloc(ats_supported ? 2 + n : 2);
	return master->build_invs ? 0 : -ENOMEM;
}

GLUE void glue_master_set_ats(struct arm_smmu_master *master, bool enabled)
{
	master->ats_enabled = enabled;
}

/* arm_smmu_domain_alloc and its finalise: the first, empty array is in
 * place before anything can reach the domain. `stage`: 0 S1, 1 S2, 2 SVA. */
GLUE int glue_domain_init(struct arm_smmu_domain *d, int stage, u16 tag, bool nest_parent,
			  unsigned long pgsize_bitmap)
{
	GLUE_GUARD
	struct arm_smmu_invs *invs = arm_smmu_invs_alloc(0);

	if (!invs)
		return -ENOMEM;
	d->stage = stage == 1 ? ARM_SMMU_DOMAIN_S2 : stage == 2 ? ARM_SMMU_DOMAIN_SVA : ARM_SMMU_DOMAIN_S1;
	if (stage == 1)
		d->s2_cfg.vmid = tag;
	else
		d->cd.asid = tag;
	d->nest_parent = nest_parent;
	d->domain.pgsize_bitmap = pgsize_bitmap;
	d->invs = invs;
	return 0;
}

GLUE void glue_state_init(struct arm_smmu_attach_state *state, struct arm_smmu_master *master,
			  struct arm_smmu_domain *old, u32 ssid, bool ats_enabled)
{
	struct arm_smmu_attach_state zero = { 0 };

	*state = zero;
	state->master = master;
	state->old_domain = old ? &old->domain : NULL;
	state->ssid = ssid;
	state->ats_enabled = ats_enabled;
}

GLUE int glue_attach_prepare_invs(struct arm_smmu_attach_state *state, struct arm_smmu_domain *new_domain)
{
	GLUE_GUARD
	return arm_smmu_attach_prepare_invs(state, new_domain);
}

/* arm_smmu_attach_prepare's err_unprepare_invs. */
GLUE void glue_unprepare_invs(struct arm_smmu_attach_state *state)
{
	GLUE_GUARD
	kfree(state->new_domain_invst.new_invs);
}

GLUE void glue_install_new_domain_invs(struct arm_smmu_attach_state *state)
{
	GLUE_GUARD
	arm_smmu_install_new_domain_invs(state);
}

GLUE void glue_install_old_domain_invs(struct arm_smmu_attach_state *state)
{
	GLUE_GUARD
	arm_smmu_install_old_domain_invs(state);
}

GLUE void glue_domain_inv_range(struct arm_smmu_domain *d, unsigned long iova, size_t size, unsigned int granule,
				bool leaf)
{
	GLUE_GUARD
	arm_smmu_domain_inv_range(d, iova, size, granule, leaf);
}

/* The array a domain publishes, as a plain load (for the oracle's checks). */
GLUE struct arm_smmu_invs *glue_domain_invs(struct arm_smmu_domain *d)
{
	return d->invs;
}

/* The array, entry by entry, as plain loads: what the oracle checks and
 * the differential test compares. */
GLUE void glue_invs_counts(const struct arm_smmu_invs *invs, size_t *max_invs, size_t *num_invs,
			   size_t *num_trashes, bool *has_ats)
{
	*max_invs = invs->max_invs;
	*num_invs = invs->num_invs;
	*num_trashes = invs->num_trashes;
	*has_ats = invs->has_ats;
}

GLUE void glue_invs_entry(const struct arm_smmu_invs *invs, size_t i, u32 *smmu, int *type, u32 *id, u32 *ssid,
			  int *users, u8 *size_opcode, u8 *nsize_opcode)
{
	const struct arm_smmu_inv *inv = &invs->inv[i];

	*smmu = inv->smmu ? inv->smmu->id : ~0u;
	*type = inv->type;
	*id = inv->id;
	*ssid = arm_smmu_inv_is_ats(inv) ? inv->ssid : 0;
	*users = inv->users.refs;
	*size_opcode = inv->size_opcode;
	*nsize_opcode = inv->nsize_opcode;
}

/* A to_merge / to_unref array of `n` entries, as build_invs would fill it. */
GLUE struct arm_smmu_invs *glue_invs_build(size_t n, struct arm_smmu_device *const *smmus, const int *types,
					   const u32 *ids, const u32 *ssids)
{
	GLUE_GUARD
	struct arm_smmu_invs *invs = arm_smmu_invs_alloc(n);
	size_t i;

	if (!invs)
		return NULL;
	for (i = 0; i < n; i++) {
		invs->inv[i].smmu = smmus[i];
		invs->inv[i].type = types[i];
		invs->inv[i].id = ids[i];
		if (arm_smmu_inv_is_ats(&invs->inv[i]))
			invs->inv[i].ssid = ssids[i];
	}
	return invs;
}

GLUE struct arm_smmu_invs *glue_invs_merge(struct arm_smmu_invs *invs, struct arm_smmu_invs *to_merge)
{
	GLUE_GUARD
	return arm_smmu_invs_merge(invs, to_merge);
}

GLUE void glue_invs_unref(struct arm_smmu_invs *invs, struct arm_smmu_invs *to_unref)
{
	GLUE_GUARD
	arm_smmu_invs_unref(invs, to_unref, NULL);
}

GLUE struct arm_smmu_invs *glue_invs_purge(struct arm_smmu_invs *invs)
{
	GLUE_GUARD
	return arm_smmu_invs_purge(invs);
}

GLUE void glue_kfree(void *p)
{
	GLUE_GUARD
	kfree(p);
}

#ifdef GLUE_HAS_KUNIT
GLUE void glue_kunit_invs_test(struct kunit *test)
{
	GLUE_GUARD
	arm_smmu_v3_invs_test(test);
}
#endif
