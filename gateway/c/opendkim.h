#pragma once
// libopendkim through one door (design.md §5): its header spells booleans with C's _Bool, which
// C++ calls bool; it has its own extern "C".

#include <sys/param.h>
#include <sys/time.h>
#include <sys/types.h>

#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool
