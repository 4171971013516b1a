// Clang's thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html),
// as LevelDB's port/thread_annotations.h has them: which mutex guards which member, and
// which functions must (or must not) hold it. Clang checks them at compile time with
// -Wthread-safety (on for every Clang build: CMakeLists.txt; the fuzz preset is one, built
// by the test command on CI); other compilers ignore them.
#pragma once

#if defined(__clang__)
#define CW_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define CW_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) CW_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY CW_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) CW_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) CW_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) CW_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) CW_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define EXCLUDES(...) CW_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) CW_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) CW_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) CW_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) CW_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) CW_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CW_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) CW_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS CW_THREAD_ANNOTATION(no_thread_safety_analysis)
