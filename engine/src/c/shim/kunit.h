/*
 * A minimal KUnit for the series' own test: each expectation is counted,
 * and the first that fails is remembered with its line.
 */
#ifndef SMMU_STRESS_KUNIT_H
#define SMMU_STRESS_KUNIT_H

struct kunit {
	int passed;
	int failed;
	int first_failed_line;
};

struct kunit_case {
	void (*run_case)(struct kunit *test);
	const char *name;
};

#define KUNIT_CASE(f) { .run_case = (f), .name = #f }

static inline int kunit_check(struct kunit *test, int ok, int line)
{
	if (ok) {
		test->passed++;
	} else {
		if (!test->failed)
			test->first_failed_line = line;
		test->failed++;
	}
	return ok;
}

#define KUNIT_EXPECT_TRUE(test, c) kunit_check((test), !!(c), __LINE__)
#define KUNIT_EXPECT_FALSE(test, c) kunit_check((test), !(c), __LINE__)
#define KUNIT_EXPECT_EQ(test, l, r) kunit_check((test), (long long)(l) == (long long)(r), __LINE__)
#define KUNIT_EXPECT_NE(test, l, r) kunit_check((test), (long long)(l) != (long long)(r), __LINE__)
#define KUNIT_EXPECT_PTR_EQ(test, l, r) kunit_check((test), (const void *)(l) == (const void *)(r), __LINE__)
#define KUNIT_EXPECT_NULL(test, p) kunit_check((test), (p) == NULL, __LINE__)
#define KUNIT_EXPECT_NOT_NULL(test, p) kunit_check((test), (p) != NULL, __LINE__)
#define KUNIT_EXPECT_NOT_ERR_OR_NULL(test, p) kunit_check((test), !IS_ERR_OR_NULL(p), __LINE__)
#define KUNIT_ASSERT_TRUE(test, c) do { if (!KUNIT_EXPECT_TRUE(test, c)) return; } while (0)
#define KUNIT_ASSERT_FALSE(test, c) do { if (!KUNIT_EXPECT_FALSE(test, c)) return; } while (0)
#define KUNIT_ASSERT_EQ(test, l, r) do { if (!KUNIT_EXPECT_EQ(test, l, r)) return; } while (0)
#define KUNIT_ASSERT_NE(test, l, r) do { if (!KUNIT_EXPECT_NE(test, l, r)) return; } while (0)
#define KUNIT_ASSERT_NOT_NULL(test, p) do { if (!KUNIT_EXPECT_NOT_NULL(test, p)) return; } while (0)
#define KUNIT_ASSERT_NOT_ERR_OR_NULL(test, p) do { if (!KUNIT_EXPECT_NOT_ERR_OR_NULL(test, p)) return; } while (0)

#endif
