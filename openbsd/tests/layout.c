/*
 * The PF structures log2drop passes to /dev/pf, declared a second time, in C, from
 * the field lists of OpenBSD's sys/net/pfvar.h (rev. 1.510), sys/sys/ioccom.h and
 * the types they use. tests/c_layout.rs includes this file, appends
 * _Static_asserts generated from the Rust declarations (src/pf/sys.rs) and has
 * clang type-check it for x86_64-unknown-openbsd and aarch64-unknown-openbsd:
 * the two independent writings must agree on every size and offset.
 *
 * No system header is included (there is no OpenBSD sysroot here); the few types
 * are spelled out as OpenBSD's machine headers define them.
 */

typedef unsigned char u_int8_t;
typedef unsigned short u_int16_t;
typedef unsigned int u_int32_t;
typedef unsigned long long u_int64_t;
typedef unsigned int u_int;
typedef u_int8_t sa_family_t;

#define PATH_MAX		1024
#define IFNAMSIZ		16
#define RTLABEL_LEN		32
#define PF_TABLE_NAME_SIZE	32
#define PF_RULE_LABEL_SIZE	64

/* netinet/in.h */
struct in_addr {
	u_int32_t s_addr;
};

struct in6_addr {
	union {
		u_int8_t __u6_addr8[16];
		u_int16_t __u6_addr16[8];
		u_int32_t __u6_addr32[4];
	} __u6_addr;
};

/* net/pfvar.h */
struct pf_addr {
	union {
		struct in_addr v4;
		struct in6_addr v6;
		u_int8_t addr8[16];
		u_int16_t addr16[8];
		u_int32_t addr32[4];
	} pfa;
};

struct pf_addr_wrap {
	union {
		struct {
			struct pf_addr addr;
			struct pf_addr mask;
		} a;
		char ifname[IFNAMSIZ];
		char tblname[PF_TABLE_NAME_SIZE];
		char rtlabelname[RTLABEL_LEN];
		u_int32_t rtlabel;
	} v;
	union {
		struct pfi_dynaddr *dyn;
		struct pfr_ktable *tbl;
		int dyncnt;
		int tblcnt;
	} p;
	u_int8_t type;
	u_int8_t iflags;
};

struct pf_rule_addr {
	struct pf_addr_wrap addr;
	u_int16_t port[2];
	u_int8_t neg;
	u_int8_t port_op;
	u_int16_t weight;
};

struct pf_state_cmp {
	u_int64_t id;
	u_int32_t creatorid;
	u_int8_t direction;
	u_int8_t pad[3];
};

struct pfioc_state_kill {
	struct pf_state_cmp psk_pfcmp;
	sa_family_t psk_af;
	int psk_proto;
	struct pf_rule_addr psk_src;
	struct pf_rule_addr psk_dst;
	char psk_ifname[IFNAMSIZ];
	char psk_label[PF_RULE_LABEL_SIZE];
	u_int psk_killed;
	u_int16_t psk_rdomain;
};

struct pfr_table {
	char pfrt_anchor[PATH_MAX];
	char pfrt_name[PF_TABLE_NAME_SIZE];
	u_int32_t pfrt_flags;
	u_int8_t pfrt_fback;
};

struct pfr_addr {
	union {
		struct in_addr _pfra_ip4addr;
		struct in6_addr _pfra_ip6addr;
	} pfra_u;
	char pfra_ifname[IFNAMSIZ];
	u_int32_t pfra_states;
	u_int16_t pfra_weight;
	u_int8_t pfra_af;
	u_int8_t pfra_net;
	u_int8_t pfra_not;
	u_int8_t pfra_fback;
	u_int8_t pfra_type;
	u_int8_t pad[7];
};

struct pfioc_table {
	struct pfr_table pfrio_table;
	void *pfrio_buffer;
	int pfrio_esize;
	int pfrio_size;
	int pfrio_size2;
	int pfrio_nadd;
	int pfrio_ndel;
	int pfrio_nchange;
	int pfrio_flags;
	u_int32_t pfrio_ticket;
};

/* sys/ioccom.h */
#define IOCPARM_MASK	0x1fff
#define IOC_OUT		(unsigned long)0x40000000
#define IOC_IN		(unsigned long)0x80000000
#define IOC_INOUT	(IOC_IN|IOC_OUT)
#define _IOC(inout, group, num, len) \
	((inout) | (((len) & IOCPARM_MASK) << 16) | ((group) << 8) | (num))
#define _IOWR(g, n, t)	_IOC(IOC_INOUT, (g), (n), sizeof(t))

#define DIOCKILLSTATES	_IOWR('D', 41, struct pfioc_state_kill)
#define DIOCRADDTABLES	_IOWR('D', 61, struct pfioc_table)
#define DIOCRCLRADDRS	_IOWR('D', 66, struct pfioc_table)
#define DIOCRADDADDRS	_IOWR('D', 67, struct pfioc_table)
#define DIOCRDELADDRS	_IOWR('D', 68, struct pfioc_table)
#define DIOCRSETADDRS	_IOWR('D', 69, struct pfioc_table)
#define DIOCRGETADDRS	_IOWR('D', 70, struct pfioc_table)
