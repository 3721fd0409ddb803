#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Wireless helpers for the rust_livepatch kselftests: an access point and a
# station on two mac80211_hwsim radios, for the mac80211 power-save race on
# the real mac80211 (patches/ bring it back to the test kernel).  Sourced
# after functions.sh.
#
#   wifi_up           load mac80211_hwsim (2 radios), hostapd on radio 0 (open
#                     network, channel 1), radio 1 connects with iw; returns
#                     once the AP has the station associated and authorized
#   wifi_ps_state     the frames the AP buffers for the station and its
#                     power-save flags (WIFI_BUFFERED, WIFI_PS_FLAGS, REPLY)
#   wifi_traffic ARGS run wifi_traffic (wifi_traffic.c) between the two;
#                     its result in WIFI_RESULT[key] and REPLY (keys: sent
#                     received lost late stranded_wakes buffered_end...,
#                     see wifi_traffic.c)
#   wifi_down [all]   stop hostapd, unload mac80211_hwsim; with "all" also
#                     the modules wifi_up loaded with it (mac80211, cfg80211
#                     and their dependencies)
#
# wifi_up exports:
#   WIFI_AP_IF, WIFI_AP_MAC, WIFI_AP_PHY     the access point (radio 0)
#   WIFI_STA_IF, WIFI_STA_MAC, WIFI_STA_PHY  the station (radio 1)
#   WIFI_PS_KNOB     the station radio's hwsim debugfs "ps": 1 puts it into
#                    power save (hwsim sends a null-data frame with the PM
#                    bit to the AP, then drops what it receives), 0 wakes it
#   WIFI_AP_STA_DIR  the AP's debugfs directory of the station (flags,
#                    num_ps_buf_frames: per AC, ps_tx_buf plus tx_filtered)
#   WIFI_UP_MS       how long wifi_up took
# Process starts cost seconds under TCG: modprobe, mktemp, hostapd and iw
# are the only ones; the polls read sysfs and debugfs with the shell.

WIFI_SSID=${WIFI_SSID:-rklp-ps}
WIFI_FREQ=2412			# channel 1
WIFI_HOSTAPD=${WIFI_HOSTAPD:-/usr/sbin/hostapd}
WIFI_IW=${WIFI_IW:-/usr/sbin/iw}
WIFI_TRAFFIC=$KSFT_DIR/wifi_traffic
WIFI_DEBUGFS=/sys/kernel/debug/ieee80211
WIFI_HOSTAPD_PID=
WIFI_DIR=
WIFI_MODS_LOADED=()
declare -A WIFI_RESULT

# wifi_flag_set(file, flag) - is flag a line of the station flags file?
wifi_flag_set() {
	local f
	while read -r f; do
		[ "$f" = "$2" ] && return 0
	done 2>/dev/null <"$1"
	return 1
}

# wifi_loadable_modules - the loadable modules loaded now, in REPLY (a list)
wifi_loadable_modules() {
	local m
	REPLY=
	for m in /sys/module/*/refcnt; do
		m=${m%/refcnt}
		REPLY+=" ${m##*/}"
	done
}

# wifi_hostapd_gone - has hostapd exited? (Our child: a zombie until waited for.)
wifi_hostapd_gone() {
	local _pid _comm state
	read -r _pid _comm state _ 2>/dev/null <"/proc/$WIFI_HOSTAPD_PID/stat" || return 0
	[ "$state" = Z ]
}

# wifi_hostapd_log - the end of hostapd's log, as KTAP messages
wifi_hostapd_log() {
	local l lines=()
	while read -r l; do
		lines+=("$l")
	done 2>/dev/null <"$WIFI_DIR/hostapd.log"
	for l in "${lines[@]: -15}"; do
		ktap_print_msg "hostapd: $l"
	done
}

# wifi_up - the access point and the station, associated and authorized
wifi_up() {
	local t0=${EPOCHREALTIME/./} before m dev phy idx ap= sta= ap_idx= sta_idx=
	local flags try
	is_loaded mac80211_hwsim && {
		ktap_print_msg "mac80211_hwsim is loaded already"
		return 1
	}
	wifi_loadable_modules
	before="$REPLY "
	log "% modprobe mac80211_hwsim radios=2"
	modprobe mac80211_hwsim radios=2 || {
		ktap_print_msg "modprobe mac80211_hwsim failed"
		return 1
	}
	# What modprobe loaded, for wifi_down all.
	wifi_loadable_modules
	WIFI_MODS_LOADED=()
	for m in $REPLY; do
		[[ "$before" == *" $m "* ]] || WIFI_MODS_LOADED+=("$m")
	done

	# The radios' interfaces (registered before modprobe returned): the
	# phy with the lower index is radio 0, the access point.
	for dev in /sys/class/net/*/phy80211; do
		[ -e "$dev" ] || continue
		dev=${dev%/phy80211}
		dev=${dev##*/}
		read_var phy "/sys/class/net/$dev/phy80211/name"
		read_var idx "/sys/class/net/$dev/phy80211/index"
		[ -e "$WIFI_DEBUGFS/$phy/hwsim" ] || continue
		if [ -z "$ap" ] || [ "$idx" -lt "$ap_idx" ]; then
			sta=$ap sta_idx=$ap_idx
			ap=$dev ap_idx=$idx
		elif [ -z "$sta" ] || [ "$idx" -lt "$sta_idx" ]; then
			sta=$dev sta_idx=$idx
		fi
	done
	[ -n "$ap" ] && [ -n "$sta" ] || {
		ktap_print_msg "mac80211_hwsim: no two radios with interfaces"
		return 1
	}
	export WIFI_AP_IF=$ap WIFI_STA_IF=$sta
	read_var WIFI_AP_PHY "/sys/class/net/$ap/phy80211/name"
	read_var WIFI_STA_PHY "/sys/class/net/$sta/phy80211/name"
	read_var WIFI_AP_MAC "/sys/class/net/$ap/address"
	read_var WIFI_STA_MAC "/sys/class/net/$sta/address"
	export WIFI_AP_PHY WIFI_STA_PHY WIFI_AP_MAC WIFI_STA_MAC
	export WIFI_PS_KNOB=$WIFI_DEBUGFS/$WIFI_STA_PHY/hwsim/ps
	export WIFI_AP_STA_DIR=$WIFI_DEBUGFS/$WIFI_AP_PHY/netdev:$ap/stations/$WIFI_STA_MAC
	ktap_print_msg "wifi: AP $ap ($WIFI_AP_PHY, $WIFI_AP_MAC), station $sta ($WIFI_STA_PHY, $WIFI_STA_MAC)"

	# hostapd: an open network on channel 1.  No disconnection for lost
	# frames (a station in hwsim's power save drops what it receives until
	# the AP saw its null-data frame) or for inactivity.
	WIFI_DIR=$(mktemp -d /tmp/rklp-wifi.XXXXXX) || return 1
	printf '%s\n' "interface=$ap" driver=nl80211 "ctrl_interface=$WIFI_DIR/ctrl" \
		"ssid=$WIFI_SSID" hw_mode=g channel=1 auth_algs=1 wpa=0 \
		disassoc_low_ack=0 skip_inactivity_poll=1 ap_max_inactivity=3600 \
		>"$WIFI_DIR/hostapd.conf"
	log "% hostapd $WIFI_DIR/hostapd.conf"
	"$WIFI_HOSTAPD" -t "$WIFI_DIR/hostapd.conf" </dev/null >"$WIFI_DIR/hostapd.log" 2>&1 &
	WIFI_HOSTAPD_PID=$!
	# The AP beacons once hostapd started it: carrier on.
	loop_until "! wifi_hostapd_gone || return 1; read_var flags /sys/class/net/$ap/carrier; [ \"\$flags\" = 1 ]" || {
		ktap_print_msg "hostapd did not start the access point on $ap"
		wifi_hostapd_log
		return 1
	}

	# The station: up (the sysfs flags, no process), then connect.
	read_var flags "/sys/class/net/$sta/flags"
	printf -v flags '%#x' $((flags | 1))
	echo "$flags" >"/sys/class/net/$sta/flags" || return 1
	# The station gives up when the AP's association response is late
	# three times (mac80211's IEEE80211_ASSOC_TIMEOUT, 200 ms): hostapd's
	# under TCG often is, while the AP does list the station as associated.
	# Until the station has its carrier too: connect again.
	for ((try = 1; ; try++)); do
		log "% iw dev $sta connect $WIFI_SSID $WIFI_FREQ $WIFI_AP_MAC (try $try)"
		"$WIFI_IW" dev "$sta" connect "$WIFI_SSID" "$WIFI_FREQ" "$WIFI_AP_MAC" || {
			ktap_print_msg "iw dev $sta connect failed"
			return 1
		}
		MAX_RETRIES=80 loop_until "read_var flags /sys/class/net/$sta/carrier; [ \"\$flags\" = 1 ] && wifi_flag_set $WIFI_AP_STA_DIR/flags AUTHORIZED && wifi_flag_set $WIFI_AP_STA_DIR/flags ASSOC" &&
			break
		[ $try -lt 5 ] && continue
		ktap_print_msg "station $sta not associated and authorized after $try tries"
		wifi_hostapd_log
		return 1
	done
	[ $try = 1 ] || ktap_print_msg "wifi: associated at try $try"
	export WIFI_UP_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
	ktap_print_msg "wifi: station associated and authorized in $WIFI_UP_MS ms"
}

# wifi_ps_state - the frames the AP buffers for the station (all ACs, sleep
# buffers and filtered frames) in WIFI_BUFFERED, the station's power-save
# flags there (PS_STA PS_DRIVER PS_DELIVER PSPOLL UAPSD SP, those set) in
# WIFI_PS_FLAGS; REPLY: "buffered=N flags=A,B" ("-" for none).  1 if the AP
# has no such station.
wifi_ps_state() {
	local k n f
	WIFI_BUFFERED=0 WIFI_PS_FLAGS=
	[ -d "$WIFI_AP_STA_DIR" ] || {
		REPLY="no station $WIFI_STA_MAC on $WIFI_AP_IF"
		return 1
	}
	while read -r k n; do
		[[ "$k" == AC*: ]] && WIFI_BUFFERED=$((WIFI_BUFFERED + n))
	done <"$WIFI_AP_STA_DIR/num_ps_buf_frames"
	while read -r f; do
		case $f in
		PS_STA | PS_DRIVER | PS_DELIVER | PSPOLL | UAPSD | SP)
			WIFI_PS_FLAGS+=${WIFI_PS_FLAGS:+,}$f ;;
		esac
	done <"$WIFI_AP_STA_DIR/flags"
	REPLY="buffered=$WIFI_BUFFERED flags=${WIFI_PS_FLAGS:--}"
}

# wifi_traffic(args...) - run wifi_traffic from the AP to the station with
# more arguments (-t SECONDS, -r RATE, -S/-W ms...); its result line in
# REPLY and its keys in WIFI_RESULT (sent, received, late, buffered_end...).
# 1 if it failed or printed no result.
wifi_traffic() {
	local line kv rc
	WIFI_RESULT=()
	REPLY=
	[ -x "$WIFI_TRAFFIC" ] || {
		ktap_print_msg "$WIFI_TRAFFIC not built (make -C $KSFT_DIR)"
		return 1
	}
	# Its status on a last line of its own (the process substitution's).
	while read -r line; do
		case $line in
		"wifi_traffic: "*=*) REPLY=${line#wifi_traffic: } ;;
		rc=*) rc=${line#rc=} ;;
		*) ktap_print_msg "$line" ;;
		esac
	done < <("$WIFI_TRAFFIC" -a "$WIFI_AP_IF" -s "$WIFI_STA_IF" -p "$WIFI_PS_KNOB" \
		-b "$WIFI_AP_STA_DIR/num_ps_buf_frames" "$@" 2>&1; echo "rc=$?")
	for kv in $REPLY; do
		WIFI_RESULT[${kv%%=*}]=${kv#*=}
	done
	[ "$rc" = 0 ] && [ -n "$REPLY" ]
}

# wifi_down([all]) - stop hostapd and unload mac80211_hwsim; with "all" also
# unload what wifi_up loaded with it (mac80211, cfg80211...), dependents
# first.  Safe to call after a wifi_up that failed half way.
wifi_down() {
	local ok=0 m left progress
	# The station awake first, and seen awake by the AP: hostapd's last
	# frames (the deauthentication, with a TX status request) must not wait
	# in the sleep buffer of a station whose radio is then removed (seen
	# once: mac80211's "Have pending ack frames!" WARN in
	# ieee80211_free_hw() after traffic was killed with the station asleep).
	if [ -n "${WIFI_PS_KNOB:-}" ] && [ -w "$WIFI_PS_KNOB" ]; then
		echo 0 >"$WIFI_PS_KNOB" 2>/dev/null
		loop_until "! wifi_flag_set $WIFI_AP_STA_DIR/flags PS_STA" ||
			ktap_print_msg "the AP still sees the station asleep"
	fi
	if [ -n "$WIFI_HOSTAPD_PID" ]; then
		kill "$WIFI_HOSTAPD_PID" 2>/dev/null
		loop_until wifi_hostapd_gone || {
			ktap_print_msg "hostapd ($WIFI_HOSTAPD_PID) did not exit"
			ok=1
		}
		wait "$WIFI_HOSTAPD_PID" 2>/dev/null
		WIFI_HOSTAPD_PID=
	fi
	if is_loaded mac80211_hwsim; then
		unload_mod mac80211_hwsim || ok=1
	fi
	if [ "${1:-}" = all ]; then
		# Dependents first: a module whose holders are all gone.
		left=("${WIFI_MODS_LOADED[@]}")
		while [ ${#left[@]} -gt 0 ]; do
			local rest=()
			progress=0
			for m in "${left[@]}"; do
				is_loaded "$m" || continue
				local h=("/sys/module/$m/holders/"*)
				if [ -e "${h[0]}" ]; then
					rest+=("$m")
				else
					unload_mod "$m" || ok=1
					progress=1
				fi
			done
			left=("${rest[@]}")
			[ $progress = 1 ] || break
		done
		[ ${#left[@]} = 0 ] || {
			ktap_print_msg "still loaded: ${left[*]}"
			ok=1
		}
		WIFI_MODS_LOADED=()
	fi
	if [ -n "$WIFI_DIR" ]; then
		rm -rf "$WIFI_DIR"
		WIFI_DIR=
	fi
	return $ok
}
