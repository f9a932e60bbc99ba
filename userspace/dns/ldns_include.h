// Include ldns through here: without __bool_true_false_are_defined, ldns's
// common.h #defines bool, true and false as macros, which breaks C++ code
// included after it. <stdbool.h> defines the guard (and nothing else in C++).
#pragma once

#include <stdbool.h>

#include <ldns/ldns.h>
