/*
 * The driver's structures from before the series, with the project's own
 * minimal members. The extractor defines SERIES_MEMBERS_<name> as the
 * members the series adds to each (its header hunks) before this header
 * is included, after the series' own types.
 */
#ifndef SMMU_STRESS_SMMU_H
#define SMMU_STRESS_SMMU_H

struct iommu_domain {
	unsigned int type;
	unsigned long pgsize_bitmap;
};

enum arm_smmu_domain_stage {
	ARM_SMMU_DOMAIN_S1 = 0,
	ARM_SMMU_DOMAIN_S2,
	SERIES_MEMBERS_arm_smmu_domain_stage
};

struct arm_smmu_ctx_desc {
	u16 asid;
};

struct arm_smmu_s2_cfg {
	u16 vmid;
};

struct arm_smmu_domain {
	struct arm_smmu_device *smmu;
	enum arm_smmu_domain_stage stage;
	union {
		struct arm_smmu_ctx_desc cd;
		struct arm_smmu_s2_cfg s2_cfg;
	};
	struct iommu_domain domain;
	bool nest_parent;
	SERIES_MEMBERS_arm_smmu_domain
};

struct arm_smmu_master;

struct arm_smmu_stream {
	u32 id;
	struct arm_smmu_master *master;
};

struct arm_smmu_master {
	struct arm_smmu_device *smmu;
	struct device *dev;
	struct arm_smmu_stream *streams;
	unsigned int num_streams;
	bool ats_enabled;
	SERIES_MEMBERS_arm_smmu_master
};

struct arm_smmu_vmaster;

struct arm_smmu_attach_state {
	/* Inputs */
	struct iommu_domain *old_domain;
	struct arm_smmu_master *master;
	bool cd_needs_ats;
	bool disable_ats;
	ioasid_t ssid;
	/* Resulting state */
	struct arm_smmu_vmaster *vmaster;
	bool ats_enabled;
	SERIES_MEMBERS_arm_smmu_attach_state
};

/* The domain an attachment's invalidations go to: the model hands the
 * paging domain's own iommu_domain, or NULL for blocked and identity. */
static inline struct arm_smmu_domain *to_smmu_domain_devices(struct iommu_domain *domain)
{
	return domain ? container_of(domain, struct arm_smmu_domain, domain) : NULL;
}

#endif
