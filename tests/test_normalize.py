"""Vietnamese text normaliser: exact readings of realistic ward announcements, plus property tests."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio.normalize import DEFAULT_ABBREVIATIONS, normalize, read_decimal, read_number

AUDIO_DIR = Path(__file__).resolve().parent.parent / "audio"

# ------------------------------------------------------------------------------------------ read_number

NUMBERS = [
    (0, "không"),
    (1, "một"),
    (5, "năm"),
    (10, "mười"),
    (11, "mười một"),
    (14, "mười bốn"),
    (15, "mười lăm"),
    (20, "hai mươi"),
    (21, "hai mươi mốt"),
    (24, "hai mươi tư"),
    (25, "hai mươi lăm"),
    (31, "ba mươi mốt"),
    (44, "bốn mươi tư"),
    (55, "năm mươi lăm"),
    (100, "một trăm"),
    (101, "một trăm linh một"),
    (104, "một trăm linh bốn"),
    (105, "một trăm linh năm"),
    (110, "một trăm mười"),
    (111, "một trăm mười một"),
    (115, "một trăm mười lăm"),
    (121, "một trăm hai mươi mốt"),
    (1000, "một nghìn"),
    (1005, "một nghìn không trăm linh năm"),
    (1010, "một nghìn không trăm mười"),
    (1050, "một nghìn không trăm năm mươi"),
    (1945, "một nghìn chín trăm bốn mươi lăm"),
    (2016, "hai nghìn không trăm mười sáu"),
    (2025, "hai nghìn không trăm hai mươi lăm"),
    (10_000, "mười nghìn"),
    (15_000, "mười lăm nghìn"),
    (21_000, "hai mươi mốt nghìn"),
    (40_500, "bốn mươi nghìn năm trăm"),
    (105_000, "một trăm linh năm nghìn"),
    (1_000_000, "một triệu"),
    (1_200_000, "một triệu hai trăm nghìn"),
    (1_000_050, "một triệu không trăm năm mươi"),
    (1_050_000, "một triệu không trăm năm mươi nghìn"),
    (1_263_600, "một triệu hai trăm sáu mươi ba nghìn sáu trăm"),
    (3_000_005, "ba triệu không trăm linh năm"),
    (1_000_000_000, "một tỷ"),
    (2_500_000_000, "hai tỷ năm trăm triệu"),
    (1_000_000_000_000, "một nghìn tỷ"),
]


@pytest.mark.parametrize(("n", "expected"), NUMBERS)
def test_read_number(n, expected):
    assert read_number(n) == expected


DECIMALS = [
    ("12,75", "mười hai phẩy bảy mươi lăm"),
    ("7,5", "bảy phẩy năm"),
    ("0,05", "không phẩy không năm"),
    ("0,5", "không phẩy năm"),
    ("2,50", "hai phẩy năm mươi"),
    ("3.5", "ba phẩy năm"),
    ("1.234,5", "một nghìn hai trăm ba mươi tư phẩy năm"),
    ("12,125", "mười hai phẩy một trăm hai mươi lăm"),
    ("3,14159", "ba phẩy một bốn một năm chín"),
]


@pytest.mark.parametrize(("s", "expected"), DECIMALS)
def test_read_decimal(s, expected):
    assert read_decimal(s) == expected


def test_read_decimal_rejects_garbage():
    with pytest.raises(ValueError):
        read_decimal("12,5abc")


# ------------------------------------------------------------------------------------------- normalize

CASES = [
    # --- plain numbers, population counts
    ("Phường có 1.250 hộ.", "Phường có một nghìn hai trăm năm mươi hộ."),
    ("Tổng số 3.456 nhân khẩu", "Tổng số ba nghìn bốn trăm năm mươi sáu nhân khẩu"),
    ("Năm 2025", "Năm hai nghìn không trăm hai mươi lăm"),
    ("40.500 người", "bốn mươi nghìn năm trăm người"),
    ("1.000.050 đồng", "một triệu không trăm năm mươi đồng"),
    ("Chỉ số 3.5", "Chỉ số ba phẩy năm"),
    ("tổ 05", "tổ năm"),
    ("1,250,000 người", "một triệu hai trăm năm mươi nghìn người"),
    ("Mục 1.2.3", "Mục một chấm hai chấm ba"),
    ("đàn 2.300 con gia cầm", "đàn hai nghìn ba trăm con gia cầm"),
    ("Kỷ niệm 50 năm", "Kỷ niệm năm mươi năm"),
    # --- percentages
    ("Tỷ lệ 12,5%", "Tỷ lệ mười hai phẩy năm phần trăm"),
    ("Đạt 30% kế hoạch", "Đạt ba mươi phần trăm kế hoạch"),
    ("tăng 20-25%", "tăng hai mươi đến hai mươi lăm phần trăm"),
    ("tỷ lệ hộ nghèo 1,2%.", "tỷ lệ hộ nghèo một phẩy hai phần trăm."),
    ("95% trẻ em được tiêm", "chín mươi lăm phần trăm trẻ em được tiêm"),
    ("mức thu 0,03%", "mức thu không phẩy không ba phần trăm"),
    ("~30% diện tích", "khoảng ba mươi phần trăm diện tích"),
    # --- ranges
    ("từ 20-25 tuổi", "từ hai mươi đến hai mươi lăm tuổi"),
    ("20 - 25", "hai mươi đến hai mươi lăm"),
    ("20–25", "hai mươi đến hai mươi lăm"),
    ("2016-2020", "hai nghìn không trăm mười sáu đến hai nghìn không trăm hai mươi"),
    (
        "giai đoạn 2021 - 2025",
        "giai đoạn hai nghìn không trăm hai mươi mốt đến hai nghìn không trăm hai mươi lăm",
    ),
    ("Bão số 3, gió giật cấp 10-12.", "Bão số ba, gió giật cấp mười đến mười hai."),
    ("lượng mưa 100-200mm", "lượng mưa một trăm đến hai trăm mi li mét"),
    ("nhiệm kỳ 2025-2030", "nhiệm kỳ hai nghìn không trăm hai mươi lăm đến hai nghìn không trăm ba mươi"),
    ("trẻ từ 1-5 tuổi", "trẻ từ một đến năm tuổi"),
    ("phạt từ 4.000.000 - 6.000.000 đồng", "phạt từ bốn triệu đến sáu triệu đồng"),
    ("nhiệt độ 35-37°C", "nhiệt độ ba mươi lăm đến ba mươi bảy độ xê"),
    # --- dates
    ("14/4/2018", "ngày mười bốn tháng tư năm hai nghìn không trăm mười tám"),
    ("ngày 14/4/2018", "ngày mười bốn tháng tư năm hai nghìn không trăm mười tám"),
    ("Ngày 2/9", "Ngày mùng hai tháng chín"),
    ("09/04/2022", "ngày mùng chín tháng tư năm hai nghìn không trăm hai mươi hai"),
    ("tháng 3/2024", "tháng ba năm hai nghìn không trăm hai mươi tư"),
    ("trong 12/2024", "trong tháng mười hai năm hai nghìn không trăm hai mươi tư"),
    (
        "Hội nghị lúc 7h30 ngày 15/3/2025 tại hội trường UBND phường.",
        "Hội nghị lúc bảy giờ ba mươi phút ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm "
        "tại hội trường ủy ban nhân dân phường.",
    ),
    ("Sáng 15/3, người dân tập trung", "Sáng ngày mười lăm tháng ba, người dân tập trung"),
    ("Sáng nay (14/4), trời nắng", "Sáng nay, ngày mười bốn tháng tư, trời nắng"),
    ("hôm 2/9", "hôm mùng hai tháng chín"),
    ("Quốc khánh 2-9", "Quốc khánh mùng hai tháng chín"),
    ("Ngày 20-11", "Ngày hai mươi tháng mười một"),
    ("14-4-2018", "ngày mười bốn tháng tư năm hai nghìn không trăm mười tám"),
    ("14.4.2018", "ngày mười bốn tháng tư năm hai nghìn không trăm mười tám"),
    (
        "Từ ngày 5-7/3/2025",
        "Từ ngày mùng năm đến mùng bảy tháng ba năm hai nghìn không trăm hai mươi lăm",
    ),
    ("từ 15/3-20/3", "từ ngày mười lăm tháng ba đến ngày hai mươi tháng ba"),
    ("từ 15/3 đến 20/3", "từ ngày mười lăm tháng ba đến ngày hai mươi tháng ba"),
    (
        "30/4/1975 - 30/4/2025",
        "ngày ba mươi tháng tư năm một nghìn chín trăm bảy mươi lăm đến ngày ba mươi tháng tư "
        "năm hai nghìn không trăm hai mươi lăm",
    ),
    ("ngày 15 tháng 3 năm 2025", "ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm"),
    ("Ngày 2 tháng 9 năm 1945", "Ngày mùng hai tháng chín năm một nghìn chín trăm bốn mươi lăm"),
    ("ngày 2-3 tháng 9", "ngày mùng hai đến mùng ba tháng chín"),
    ("mùng 2/9", "mùng hai tháng chín"),
    ("Trong tháng 4 có 2 đợt.", "Trong tháng tư có hai đợt."),
    ("mỗi tháng 4 lần", "mỗi tháng bốn lần"),
    ("Tháng 1", "Tháng một"),
    ("Thứ 2, 14/4", "Thứ hai, ngày mười bốn tháng tư"),
    ("Dịp 30/4 và 1/5", "Dịp ngày ba mươi tháng tư và ngày mùng một tháng năm"),
    ("quý IV/2024", "quý bốn năm hai nghìn không trăm hai mươi tư"),
    (
        "Hạn chót 31/12/2025.",
        "Hạn chót ngày ba mươi mốt tháng mười hai năm hai nghìn không trăm hai mươi lăm.",
    ),
    ("ngày 10/01/2025", "ngày mùng mười tháng một năm hai nghìn không trăm hai mươi lăm"),
    ("Ngày hội Đại đoàn kết 18/11", "Ngày hội Đại đoàn kết ngày mười tám tháng mười một"),
    # --- ratios
    ("12/20 hộ", "mười hai trên hai mươi hộ"),
    ("Đạt 9/10 tiêu chí", "Đạt chín trên mười tiêu chí"),
    ("tỷ lệ 3/5", "tỷ lệ ba trên năm"),
    ("Trực 24/7", "Trực hai mươi tư trên bảy"),
    ("8/10 xã", "tám trên mười xã"),
    ("15/32 tổ dân phố", "mười lăm trên ba mươi hai tổ dân phố"),
    ("4 người/hộ", "bốn người trên hộ"),
    ("Nhà số 5/2 ngõ 45", "Nhà số năm trên hai ngõ bốn mươi lăm"),
    # --- times
    ("6h45", "sáu giờ bốn mươi lăm phút"),
    ("14h00", "mười bốn giờ"),
    ("7h", "bảy giờ"),
    ("6 giờ 45", "sáu giờ bốn mươi lăm"),
    ("17:30", "mười bảy giờ ba mươi phút"),
    ("6h30'", "sáu giờ ba mươi phút"),
    ("7h30p", "bảy giờ ba mươi phút"),
    ("từ 7h00-11h00", "từ bảy giờ đến mười một giờ"),
    ("Thu gom rác 17h00 - 19h00 hàng ngày.", "Thu gom rác mười bảy giờ đến mười chín giờ hàng ngày."),
    ("lúc 7h05", "lúc bảy giờ năm phút"),
    ("6g30", "sáu giờ ba mươi phút"),
    ("trực 24h", "trực hai mươi tư giờ"),
    ("08:00", "tám giờ"),
    ("Từ 7h30 - 11h30", "Từ bảy giờ ba mươi phút đến mười một giờ ba mươi phút"),
    # --- money
    ("750.000 đồng", "bảy trăm năm mươi nghìn đồng"),
    ("750.000đ", "bảy trăm năm mươi nghìn đồng"),
    ("750.000 đ", "bảy trăm năm mươi nghìn đồng"),
    ("750.000 VNĐ", "bảy trăm năm mươi nghìn đồng"),
    ("750.000 VND", "bảy trăm năm mươi nghìn đồng"),
    ("2,5 tỷ", "hai phẩy năm tỷ"),
    ("1,2 triệu đồng", "một phẩy hai triệu đồng"),
    (
        "Mức đóng BHYT hộ gia đình là 1.263.600 đồng/người/năm.",
        "Mức đóng bảo hiểm y tế hộ gia đình là một triệu hai trăm sáu mươi ba nghìn sáu trăm đồng một người một năm.",
    ),
    ("Giá 15.000đ/kg", "Giá mười lăm nghìn đồng một ki lô gam"),
    ("Hỗ trợ 500.000 đ/hộ/tháng", "Hỗ trợ năm trăm nghìn đồng một hộ một tháng"),
    ("100 USD", "một trăm đô la Mỹ"),
    ("2 triệu đồng/tháng", "hai triệu đồng một tháng"),
    # --- units
    ("120 m2", "một trăm hai mươi mét vuông"),
    ("12.500 m²", "mười hai nghìn năm trăm mét vuông"),
    ("2,5 ha", "hai phẩy năm héc ta"),
    ("5km2", "năm ki lô mét vuông"),
    ("60km/h", "sáu mươi ki lô mét một giờ"),
    ("35°C", "ba mươi lăm độ xê"),
    ("38 độ C", "ba mươi tám độ xê"),
    ("30oC", "ba mươi độ xê"),
    ("25ºC", "hai mươi lăm độ xê"),
    ("-5°C", "âm năm độ xê"),
    ("50 kg gạo", "năm mươi ki lô gam gạo"),
    ("500 g", "năm trăm gam"),
    ("3 tấn", "ba tấn"),
    ("15 cm", "mười lăm xen ti mét"),
    ("2 l nước", "hai lít nước"),
    ("1,5 km", "một phẩy năm ki lô mét"),
    ("cách 200 m", "cách hai trăm mét"),
    ("6 tấn/ha", "sáu tấn một héc ta"),
    ("5.000 m3/s", "năm nghìn mét khối trên giây"),
    ("gió 15 m/s", "gió mười lăm mét trên giây"),
    (">38°C", "trên ba mươi tám độ xê"),
    ("phòng 3x4m", "phòng ba nhân bốn mét"),
    # --- phones and hotlines
    ("0912345678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("0912 345 678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("0912.345.678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("SĐT: 0987.654.321", "số điện thoại: không chín tám bảy sáu năm bốn ba hai một"),
    ("Gọi 114", "Gọi một một bốn"),
    ("gọi ngay 113", "gọi ngay một một ba"),
    ("cấp cứu 115", "cấp cứu một một năm"),
    ("Tổng đài 1900 9095", "Tổng đài một chín không không chín không chín năm"),
    ("Hotline: 19001234", "Hotline: một chín không không một hai ba bốn"),
    ("1800.1234", "một tám không không một hai ba bốn"),
    ("Đường dây nóng 0243 3821 111", "Đường dây nóng không hai bốn ba ba tám hai một một một một"),
    ("điện thoại 3825", "điện thoại ba tám hai năm"),
    ("+84 912 345 678", "cộng tám bốn chín một hai ba bốn năm sáu bảy tám"),
    ("Xử lý 113 vụ vi phạm", "Xử lý một trăm mười ba vụ vi phạm"),
    ("Kêu gọi 100% hộ dân", "Kêu gọi một trăm phần trăm hộ dân"),
    ("gọi 2 lần", "gọi hai lần"),
    ("Gọi 113, 114, 115.", "Gọi một một ba, một một bốn, một một năm."),
    ("Số CCCD 001203004567", "Số căn cước công dân không không một hai không ba không không bốn năm sáu bảy"),
    # --- document numbers
    (
        "Nghị định 49/2024/NĐ-CP",
        "Nghị định bốn mươi chín năm hai nghìn không trăm hai mươi tư của Chính phủ",
    ),
    (
        "Thông tư 39/2020/TT-BTTTT",
        "Thông tư ba mươi chín năm hai nghìn không trăm hai mươi của Bộ Thông tin và Truyền thông",
    ),
    (
        "Luật 100/2015/QH13",
        "Luật một trăm năm hai nghìn không trăm mười lăm của Quốc hội khóa mười ba",
    ),
    (
        "Căn cứ Nghị định số 49/2024/NĐ-CP;",
        "Căn cứ Nghị định số bốn mươi chín năm hai nghìn không trăm hai mươi tư của Chính phủ;",
    ),
    ("văn bản số 123/QĐ-UBND", "văn bản số một trăm hai mươi ba quyết định của Ủy ban nhân dân"),
    ("Kế hoạch số 45/KH-UBND", "Kế hoạch số bốn mươi lăm của Ủy ban nhân dân"),
    (
        "Quyết định 15/2025/QĐ-UBND",
        "Quyết định mười lăm năm hai nghìn không trăm hai mươi lăm của Ủy ban nhân dân",
    ),
    ("Thông tư 01/2021/TT-BYT", "Thông tư một năm hai nghìn không trăm hai mươi mốt của Bộ Y tế"),
    ("Quyết định 1234/QĐ-TTg", "Quyết định một nghìn hai trăm ba mươi tư của Thủ tướng Chính phủ"),
    ("Chỉ thị 05-CT/TW", "Chỉ thị năm của Trung ương"),
    ("Công văn 234/UBND-VX", "Công văn hai trăm ba mươi tư của Ủy ban nhân dân vê ích xì"),
    ("Nghị quyết số 01/NQ-HĐND", "Nghị quyết số một của Hội đồng nhân dân"),
    (
        "căn cứ 49/2024/NĐ-CP",
        "căn cứ bốn mươi chín năm hai nghìn không trăm hai mươi tư nghị định của Chính phủ",
    ),
    ("Quyết định số 12/2024", "Quyết định số mười hai năm hai nghìn không trăm hai mươi tư"),
    # --- ordinals, Roman numerals, weekdays
    ("thứ 2", "thứ hai"),
    ("Thứ 4", "Thứ tư"),
    ("đứng thứ 1", "đứng thứ nhất"),
    ("lần thứ 3", "lần thứ ba"),
    ("hạng thứ 10", "hạng thứ mười"),
    ("tổ 5", "tổ năm"),
    ("Quốc hội khóa XV", "Quốc hội khóa mười lăm"),
    ("Đại hội XIII", "Đại hội mười ba"),
    ("thế kỷ XXI", "thế kỷ hai mươi mốt"),
    ("Đại hội Đảng bộ lần thứ XX", "Đại hội Đảng bộ lần thứ hai mươi"),
    ("kỳ họp thứ IV", "kỳ họp thứ tư"),
    ("Chương II", "Chương hai"),
    ("Chủ nhật", "Chủ nhật"),
    ("trừ CN", "trừ chủ nhật"),
    ("T2", "thứ hai"),
    ("T4", "thứ tư"),
    ("T7", "thứ bảy"),
    ("T2-T6", "thứ hai đến thứ sáu"),
    ("thứ 2 - thứ 6", "thứ hai đến thứ sáu"),
    ("Từ thứ 2 đến thứ 6", "Từ thứ hai đến thứ sáu"),
    # --- administrative abbreviations and place prefixes
    ("UBND phường", "ủy ban nhân dân phường"),
    ("HĐND, UBND, MTTQ", "hội đồng nhân dân, ủy ban nhân dân, mặt trận tổ quốc"),
    ("TP Hà Nội", "thành phố Hà Nội"),
    ("TP.HCM", "thành phố Hồ Chí Minh"),
    ("P.5, Q.1", "phường năm, quận một"),
    ("X. Tân Lập", "xã Tân Lập"),
    ("Tp. Thủ Đức", "thành phố Thủ Đức"),
    ("TT. Đông Anh", "thị trấn Đông Anh"),
    ("BHYT, BHXH", "bảo hiểm y tế, bảo hiểm xã hội"),
    ("Đội PCCC&CNCH", "Đội phòng cháy chữa cháy và cứu nạn cứu hộ"),
    ("Ban PCTT và TKCN", "Ban phòng chống thiên tai và tìm kiếm cứu nạn"),
    ("Sở GD&ĐT", "Sở giáo dục và đào tạo"),
    ("phát triển KT-XH, bảo đảm QP-AN", "phát triển kinh tế xã hội, bảo đảm quốc phòng an ninh"),
    ("Trường THCS và THPT", "Trường trung học cơ sở và trung học phổ thông"),
    ("CSGT nhắc nhở ATGT", "cảnh sát giao thông nhắc nhở an toàn giao thông"),
    ("xây dựng NTM", "xây dựng nông thôn mới"),
    ("HTX, TDP, KDC", "hợp tác xã, tổ dân phố, khu dân cư"),
    ("CHXHCN VN", "cộng hòa xã hội chủ nghĩa Việt Nam"),
    ("ĐTN TNCS HCM", "đoàn thanh niên thanh niên cộng sản Hồ Chí Minh"),
    ("CLB dưỡng sinh", "câu lạc bộ dưỡng sinh"),
    ("cải cách TTHC và CCHC", "cải cách thủ tục hành chính và cải cách hành chính"),
    ("BCĐ phường", "ban chỉ đạo phường"),
    ("Kênh VTV", "Kênh vê tê vê"),
    ("khuyến cáo của WHO", "khuyến cáo của vê kép hát o"),
    ("mã OTP", "mã o tê pê"),
    ("THÔNG BÁO KHẨN", "THÔNG BÁO KHẨN"),
    ("V/v tiêm chủng", "về việc tiêm chủng"),
    ("Đ/c Hùng", "đồng chí Hùng"),
    ("T/M UBND", "thay mặt ủy ban nhân dân"),
    ("COVID-19", "cô vít mười chín"),
    # --- letters glued to numbers
    ("H5N1", "hát năm en nờ một"),
    ("tổ 5B", "tổ năm bê"),
    ("QL1A", "quốc lộ một a"),
    ("F0", "ép không"),
    ("sóng 4G", "sóng bốn giê"),
    # --- symbols, pauses, layout
    ("Nhà văn hóa & sân thể thao", "Nhà văn hóa và sân thể thao"),
    ("giấy tờ, v.v.", "giấy tờ, vân vân"),
    ("Xin chờ...", "Xin chờ..."),
    ("Ông A (tổ 5) đã nộp.", "Ông A, tổ năm, đã nộp."),
    ("Xin   chào  bà con", "Xin chào bà con"),
    ("THÔNG BÁO\nVề việc tiêm chủng", "THÔNG BÁO. Về việc tiêm chủng"),
    ("Kính gửi:\n- Các hộ gia đình\n- Các cơ quan", "Kính gửi: Các hộ gia đình. Các cơ quan"),
    ("Hà Nội - Hải Phòng", "Hà Nội, Hải Phòng"),
    ("Xem tại dichvucong.gov.vn.", "Xem tại dichvucong chấm gov chấm vn."),
    (
        "https://www.hanoi.gov.vn/tin-tuc",
        "hanoi chấm gov chấm vn gạch chéo tin gạch ngang tuc",
    ),
    ("Gửi ubnd@hanoi.gov.vn", "Gửi ubnd a còng hanoi chấm gov chấm vn"),
    ("Có 2 điểm tiêm!", "Có hai điểm tiêm!"),
    # --- identifiers, addresses and other announcement details
    ("Điện thoại: (024) 3825 4321", "Điện thoại: không hai bốn ba tám hai năm bốn ba hai một"),
    (
        "Số tài khoản: 1234567890 tại Agribank",
        "Số tài khoản: một hai ba bốn năm sáu bảy tám chín không tại Agribank",
    ),
    ("MST 0101234567", "mã số thuế không một không một hai ba bốn năm sáu bảy"),
    ("Khu phố 3, đường 3/2", "Khu phố ba, đường ba tháng hai"),
    ("Lúc 14 giờ 00", "Lúc mười bốn giờ"),
    ("từ 0h ngày 1/7/2025", "từ không giờ ngày mùng một tháng bảy năm hai nghìn không trăm hai mươi lăm"),
    ("Mực nước sông 9,5m", "Mực nước sông chín phẩy năm mét"),
    ("Thứ Hai (10/3) họp", "Thứ Hai, ngày mùng mười tháng ba, họp"),
    ("Báo cáo T2/2025", "Báo cáo tháng hai năm hai nghìn không trăm hai mươi lăm"),
    ("Khám 6 tháng/lần", "Khám sáu tháng một lần"),
    ("Lớp 9/3", "Lớp chín trên ba"),
    ("hẻm 12/5", "hẻm mười hai trên năm"),
    (
        "Thông tư liên tịch 01/2020/TTLT-BTC-BNV",
        "Thông tư liên tịch một năm hai nghìn không trăm hai mươi của Bộ Tài chính, Bộ Nội vụ",
    ),
    ("Công điện số 01/CĐ-UBND", "Công điện số một của Ủy ban nhân dân"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_case_count():
    assert len(CASES) + len(NUMBERS) + len(DECIMALS) >= 150


def test_whole_announcement():
    text = (
        "THÔNG BÁO\n"
        "Về việc tiêm vắc xin sởi cho trẻ từ 1-5 tuổi\n"
        "Thời gian: 7h30 - 11h00, thứ 7 ngày 22/3/2025.\n"
        "Địa điểm: TYT phường. Liên hệ đ/c Lan, SĐT 0912.345.678."
    )
    assert normalize(text) == (
        "THÔNG BÁO. Về việc tiêm vắc xin sởi cho trẻ từ một đến năm tuổi. "
        "Thời gian: bảy giờ ba mươi phút đến mười một giờ, thứ bảy ngày hai mươi hai tháng ba năm "
        "hai nghìn không trăm hai mươi lăm. Địa điểm: trạm y tế phường. Liên hệ đồng chí Lan, "
        "số điện thoại không chín một hai ba bốn năm sáu bảy tám."
    )


# ------------------------------------------------------------------------------------- dictionary, misc


def test_default_dictionary_is_large_and_clean():
    assert len(DEFAULT_ABBREVIATIONS) >= 60
    for key, value in DEFAULT_ABBREVIATIONS.items():
        assert key.strip() == key and value.strip() == value
        assert not re.search(r"[0-9]", value), key


def test_ward_can_add_and_override_abbreviations():
    assert normalize("Liên hệ BQL KĐT") == "Liên hệ ban quản lý ca đê tê"
    assert normalize("Liên hệ BQL KĐT", abbreviations={"KĐT": "khu đô thị"}) == "Liên hệ ban quản lý khu đô thị"
    assert normalize("TT Y tế", abbreviations={"TT": "trung tâm"}) == "trung tâm Y tế"
    assert normalize("TT văn hóa", abbreviations={"TT": "thông tin"}) == "thông tin văn hóa"
    assert normalize("KP 3", abbreviations={"KP": "khu phố"}) == "khu phố ba"
    # the default table is not modified by an override
    assert DEFAULT_ABBREVIATIONS["TT"] == "trung tâm"


def test_abbreviations_are_case_sensitive():
    assert normalize("Ca trực") == "Ca trực"
    assert normalize("CA phường") == "công an phường"


def test_output_is_nfc():
    nfd = unicodedata.normalize("NFD", "Ủy ban nhân dân phường họp lúc 7h30")
    out = normalize(nfd)
    assert out == unicodedata.normalize("NFC", out)
    assert out == "Ủy ban nhân dân phường họp lúc bảy giờ ba mươi phút"


def test_pause_punctuation_is_kept():
    out = normalize("Chú ý: bão số 3; gió mạnh! Có mưa không? Có, mưa to.")
    assert out == "Chú ý: bão số ba; gió mạnh! Có mưa không? Có, mưa to."


def test_empty_and_whitespace():
    assert normalize("") == ""
    assert normalize("   \n\t ") == ""


# ----------------------------------------------------------------------------------------- properties

_DIGIT_WORDS = {"không": 0, "một": 1, "mốt": 1, "hai": 2, "ba": 3, "bốn": 4, "tư": 4, "năm": 5, "lăm": 5,
                "sáu": 6, "bảy": 7, "tám": 8, "chín": 9}  # fmt: skip


def _parse_group(words: list[str]) -> int:
    value = 0
    if "trăm" in words:
        value, words = 100 * _DIGIT_WORDS[words[0]], words[2:]
    if not words:
        return value
    if words[0] == "linh":
        return value + _DIGIT_WORDS[words[1]]
    if words[0] == "mười":
        return value + 10 + (_DIGIT_WORDS[words[1]] if len(words) > 1 else 0)
    if len(words) > 1 and words[1] == "mươi":
        return value + 10 * _DIGIT_WORDS[words[0]] + (_DIGIT_WORDS[words[2]] if len(words) > 2 else 0)
    assert len(words) == 1
    return value + _DIGIT_WORDS[words[0]]


def _parse(words: list[str]) -> int:
    """Inverse of read_number, to check the reading is the right number."""
    if "tỷ" in words:
        i = len(words) - 1 - words[::-1].index("tỷ")
        return _parse(words[:i]) * 10**9 + (_parse(words[i + 1 :]) if words[i + 1 :] else 0)
    total = 0
    for unit, scale in (("triệu", 10**6), ("nghìn", 10**3)):
        if unit in words:
            i = words.index(unit)
            total += _parse_group(words[:i]) * scale
            words = words[i + 1 :]
    return total + (_parse_group(words) if words else 0)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_read_number_properties(n):
    text = read_number(n)
    assert not re.search(r"[0-9]", text)
    assert "mươi một" not in text  # 21 is "hai mươi mốt"
    assert "mươi năm" not in text  # 25 is "hai mươi lăm"
    assert "mười năm" not in text  # 15 is "mười lăm"
    assert "mươi bốn" not in text  # 24 is "hai mươi tư"
    assert "mười mốt" not in text and "mười tư" not in text and "linh mốt" not in text
    words = text.split()
    for i, w in enumerate(words):
        if w in ("mốt", "tư"):
            assert words[i - 1] == "mươi", text
        if w == "lăm":
            assert words[i - 1] in ("mươi", "mười"), text
    assert _parse(words) == n, text


_ANNOUNCEMENT_BITS = st.sampled_from(
    ["0", "1", "2", "5", "9", "12", "2025", "1.250", "12,5", "/", "-", ".", ",", ":", "%", "h", "đ", "m2", "°C",
     " ", " ngày ", " tháng ", " thứ ", " gọi ", "SĐT ", "UBND", "QH", "NĐ-CP", "/2024/", " khóa ", "XV", "(",
     ")", "'", "+", "~", "T2", "CN", "km/h", "\n", "- ", "TP.", "P.", "@", "www.", ".vn", "x", "²", "Đ/c"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), st.lists(_ANNOUNCEMENT_BITS, max_size=25).map("".join)))
def test_normalize_never_raises_and_leaves_no_digit(text):
    out = normalize(text)
    assert isinstance(out, str)
    assert not re.search(r"[0-9]", out), (text, out)
    assert out == unicodedata.normalize("NFC", out)


# ----------------------------------------------------------------------------------------- imports


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", ["normalize.py", "abbreviations.py"])
def test_no_num2words_flask_or_paho(name):
    assert not _imported_modules(AUDIO_DIR / name) & {"num2words", "flask", "paho"}


def test_num2words_not_loaded_at_run_time():
    code = (
        "import sys; from audio.normalize import normalize; normalize('Năm 2025, 12,5%'); "
        "print('num2words' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=AUDIO_DIR.parent,
    )
    assert result.stdout.strip() == "False"
