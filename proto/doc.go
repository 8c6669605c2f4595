// Package proto owns faild's wire format and the INQ/ACK exchange: it turns
// datagrams into "heard peer P on LAN L" facts and nothing else.
package proto
