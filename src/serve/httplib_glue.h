// cpp-httplib as Debian's libcpp-httplib was built: its classes must be seen
// with the same members everywhere (OpenSSL, zlib and Brotli on). Defined
// here rather than by CMake, so that the precompiled header every target
// shares keeps one set of macros. Include this, never <httplib.h>.
#pragma once
#define CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#include <httplib.h>
